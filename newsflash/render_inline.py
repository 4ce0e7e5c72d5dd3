"""premailer, incrementally: the whole email inlined once, then only the blocks that changed.

A rebuild after one item changed used to run premailer over the whole 88 KB email again
(parse, match every rule against every element, merge each element's style, serialise): over
a third of a warm rebuild. Here the email is cut into *blocks*, the innermost table rows
(every MJML element in a column is one: an item's text, its image, a heading), and the
*skeleton* around them (head, stylesheets, section and column wrappers). What premailer writes
for an element depends only on the element, its ancestors, the stylesheets and the options,
unless an inlined selector looks at siblings or position (``+``, ``~``, ``:first-child``,
``:nth-child``...). So while the skeleton and the options are those of the last email, a
block whose parsed HTML is unchanged keeps what premailer wrote for it last time, and the
changed blocks are inlined in their real context: the same document with every other branch
pruned, so their ancestors, the stylesheets and the options are the real ones. Anything else
(a changed skeleton, an unsafe selector, other options) is inlined whole, and a whole inline
is only taken apart for later if its pieces put back together give premailer's own output
byte for byte (tests/test_render_incremental.py holds the incremental result to a whole
render's, byte for byte, over many random edits).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from lxml import etree

from newsflash.premailer_import import Premailer
from newsflash.render_cut import MARK, MARK_HTML, Recent, Source, cut_source

# premailer's options, fixed: the incremental path relies on their being the same every time.
OPTIONS: dict[str, Any] = {
    "allow_network": False,
    "cssutils_logging_level": logging.CRITICAL,
    "remove_classes": False,
    "keep_style_tags": False,
    "strip_important": False,
    "disable_validation": True,
    # premailer would copy the inlined `width:100%` of an image over MJML's pixel width
    # attribute; Outlook for Windows sizes images by that attribute alone.
    "disable_basic_attributes": ["width", "height"],
}
_BLOCKS = etree.XPath("//body//tr[not(.//tr)]")
# What a block may not hold for a rebuild to inline it alone: a row (the cut would be
# another), or a stylesheet (premailer applies it to the whole email).
_NOT_IN_A_BLOCK = ("tr", "style", "link")
# Inlined selectors that may look beyond an element and its ancestors (siblings, position).
_NOT_LOCAL = re.compile(r"[:+~]")


class Inliner(Premailer):  # type: ignore[misc]  # premailer ships no type hints
    """premailer, reading each distinct <style> block once instead of once per render.

    premailer caches the parsed stylesheet, but on every transform it still writes each rule's
    declarations out through cssutils, sets `!important` on each @media declaration again and
    serialises what it cannot inline: a third of a warm render, for results that depend only
    on the block's text and its place (the options are OPTIONS, fixed). Both are kept here by
    block and place, exactly as premailer made them the first time (tests/test_golden.py holds
    the output byte for byte). `selectors` collects the selectors it inlines, so the
    incremental path can tell whether any looks at siblings."""

    blocks: ClassVar[dict[tuple[str, int], tuple[tuple[Any, ...], str | None]]] = {}
    most_blocks: ClassVar[int] = 256  # templates whose CSS varies must not grow it for ever

    def __init__(self, html: Any, *, floats: bool) -> None:
        super().__init__(html, align_floating_images=floats, **OPTIONS)
        self.selectors: list[str] = []

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], Any]:
        key = (css_body, ruleset_index)
        entry = self.blocks.get(key)  # one lookup: another thread may clear the dict
        if entry is None:
            rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
            entry = (tuple(rules), super()._css_rules_to_string(leftover) if leftover else None)
            if len(self.blocks) >= self.most_blocks:
                self.blocks.clear()
            self.blocks[key] = entry
        rules_kept, css_kept = entry
        self.selectors.extend(rule[1] for rule in rules_kept)
        return list(rules_kept), _Leftover(css_kept) if css_kept is not None else []

    def _css_rules_to_string(self, rules: Any) -> str:
        if isinstance(rules, _Leftover):
            return rules.css
        text: str = super()._css_rules_to_string(rules)
        return text


class _Leftover(list[Any]):
    """The leftover rules of one <style> block, already written out (non-empty, so premailer
    keeps the block)."""

    def __init__(self, css: str) -> None:
        super().__init__([css])
        self.css = css


def inline_whole(html: str, *, floats: bool) -> str:
    """premailer over the whole email, as it always ran: the reference the pieces must equal."""
    return str(Inliner(html, floats=floats).transform(pretty_print=False))


def _text(node: Any, *, tail: bool = False) -> str:
    """An element (or the document) as premailer serialises the email."""
    data: bytes = etree.tostring(node, method="html", encoding="utf-8", with_tail=tail)
    return data.decode("utf-8")


def _parse(text: str) -> Any:
    return etree.fromstring(text, etree.HTMLParser()).getroottree()


def _local(selectors: Sequence[str]) -> bool:
    """Whether every inlined selector reads only an element and its ancestors."""
    return not any(_NOT_LOCAL.search(s) for s in selectors)


@dataclass(frozen=True)
class _Chain:
    """A block's ancestors below <body>, as text a small document can open and close."""

    opening: str
    closing: str
    tags: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # what the parse must give back


def _ancestry(row: Any) -> tuple[Any, ...] | None:
    """The row's ancestors from <body>'s child down to its parent; None outside <body>."""
    found: list[Any] = []
    for node in row.iterancestors():
        if node.tag == "body":
            return tuple(reversed(found))
        found.append(node)
    return None


def _tags(nodes: Sequence[Any]) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    return tuple((str(n.tag), tuple(n.attrib.items())) for n in nodes)


def _start_tag(node: Any) -> str:
    text = _text(etree.Element(node.tag, dict(node.attrib)))
    return text.removesuffix(f"</{node.tag}>")


def _chains(cut: Source) -> tuple[_Chain, ...] | None:
    """Each block's ancestors, read from a parse of the marked text; None unless the marks sit
    exactly around the parsed blocks (the cut is then the parser's own)."""
    tree = _parse(cut.marked())
    marks = [c for c in tree.iter(etree.Comment) if c.text == MARK]
    rows = _BLOCKS(tree)
    if len(rows) != len(cut.blocks) or len(marks) != 2 * len(rows):
        return None
    chains = []
    for row, begin, end in zip(rows, marks[0::2], marks[1::2], strict=True):
        nodes = _ancestry(row)
        if not _alone(row, begin, end) or end.tail or nodes is None:
            return None
        opening = "".join(_start_tag(n) for n in nodes)
        closing = "".join(f"</{n.tag}>" for n in reversed(nodes))
        chains.append(_Chain(opening, closing, _tags(nodes)))
    return tuple(chains)


def _alone(row: Any, begin: Any, end: Any) -> bool:
    """Whether the row is the one node between the two marks, with no text beside it."""
    return bool(
        row is not None
        and row.tag == "tr"
        and begin.getnext() is row
        and row.getnext() is end
        and not begin.tail
        and not row.tail
    )


def _cut_tree(tree: Any, top: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The inlined email's pieces around its blocks and the blocks, in one serialisation."""
    marks = []
    for block in _BLOCKS(tree):
        begin, end = etree.Comment(MARK), etree.Comment(MARK)
        block.addprevious(begin)
        block.addnext(end)
        marks += [begin, end]
    parts = _text(top).split(MARK_HTML)
    for mark in marks:
        mark.getparent().remove(mark)
    return tuple(parts[0::2]), tuple(parts[1::2])


@dataclass(frozen=True)
class _Layout:
    """The last email, taken apart: what a rebuild compares with and reuses."""

    floats: bool
    source: Source  # its text, as cut
    chains: tuple[_Chain, ...]  # each block's ancestors
    pieces: tuple[str, ...]  # the output around the blocks
    out: tuple[str, ...]  # each block as inlined

    def html(self) -> str:
        return "".join(p + b for p, b in zip(self.pieces, (*self.out, ""), strict=True))

    def inline_block(self, i: int, text: str) -> str | None:
        """premailer's output for a new text of block `i`, inlined in a small document that
        has the email's own head (its text, unchanged) and the block's ancestors; None if the
        text is not one row there (no nested row, no stylesheet of its own), so the email
        must be inlined whole."""
        chain = self.chains[i]
        if MARK in text:
            return None
        head = self.source.skeleton[0][: self.source.body_end]
        doc = f"{head}{chain.opening}{MARK_HTML}{text}{MARK_HTML}{chain.closing}</body></html>"
        tree = _parse(doc)
        marks = [c for c in tree.iter(etree.Comment) if c.text == MARK]
        if len(marks) != 2 or not _alone(row := marks[0].getnext(), *marks):
            return None
        if next(row.iterdescendants(*_NOT_IN_A_BLOCK), None) is not None:
            return None
        if _tags(_ancestry(row) or ()) != chain.tags:
            return None
        inliner = Inliner(tree.getroot(), floats=self.floats)
        inliner.transform(pretty_print=False)
        return _text(row) if _local(inliner.selectors) else None


class IncrementalInliner:
    """Keeps the layouts of the last few emails, so a rebuild inlines only the blocks that
    changed: one per Renderer, a few because a renderer alternates between the email and
    its web version (another skeleton). A layout is replaced whole, never changed in place,
    so threads sharing a renderer each read one consistent layout."""

    most_layouts = 4

    def __init__(self) -> None:
        self._layouts: Recent[tuple[bool, tuple[str, ...]], _Layout] = Recent(self.most_layouts)
        self.whole = 0  # how many emails were inlined whole, for the tests and benchmarks
        self.blocks_inlined = 0  # how many blocks the incremental path inlined

    def inline(self, html: str, *, floats: bool) -> str:
        source = html.strip()
        last, cut = self._recut(source, floats)
        if cut is None:
            return self._whole(source, None, floats)
        if last is None:
            return self._whole(source, cut, floats)
        changed = [i for i, text in enumerate(cut.blocks) if text != last.source.blocks[i]]
        out = list(last.out)
        for i in changed:
            block = last.inline_block(i, cut.blocks[i])
            if block is None:  # a stylesheet or a row added inside: the skeleton changed
                return self._whole(source, cut, floats)
            out[i] = block
        if not changed:
            return last.html()
        self.blocks_inlined += len(changed)
        layout = replace(last, source=cut, out=tuple(out))
        self._keep(layout)
        return layout.html()

    def _recut(self, source: str, floats: bool) -> tuple[_Layout | None, Source | None]:
        """The layout to start from and the new text cut as its text is: from the text of a
        recent layout when it changed inside one block, else by reading the text's tags."""
        recent = [v for v in self._layouts.newest_first() if v.floats == floats]
        for layout in recent:
            cut = layout.source.recut(source)
            if cut is not None:
                return layout, cut
        cut = cut_source(source)
        if cut is None:
            return None, None
        return self._layouts.get((floats, cut.skeleton)), cut

    def _whole(self, source: str, cut: Source | None, floats: bool) -> str:
        """premailer over the whole email; its layout kept only if it is safe and exact."""
        self.whole += 1
        tree = _parse(source)
        # premailer writes the doctype only if the input began with lxml's spelling of it
        top = tree if source.startswith(tree.docinfo.doctype) else tree.getroot()
        # premailer reads a <style> anywhere; a rebuild reads only the head's and the changed
        # block's, so an email with one in <body> is always inlined whole
        body_styles = bool(tree.xpath("//body//style|//body//link"))
        chains = _chains(cut) if cut is not None and not body_styles else None
        inliner = Inliner(tree.getroot(), floats=floats)
        inliner.transform(pretty_print=False)
        whole = _text(top)
        if cut is not None and chains is not None and _local(inliner.selectors):
            pieces, out = _cut_tree(tree, top)
            layout = _Layout(floats, cut, chains, pieces, out)
            if len(out) == len(chains) and layout.html() == whole:
                self._keep(layout)
        return whole

    def _keep(self, layout: _Layout) -> None:
        self._layouts.keep((layout.floats, layout.source.skeleton), layout)
