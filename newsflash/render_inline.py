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
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from lxml import etree
from premailer import Premailer

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
# A random mark per process: no email can hold it, so splitting on it cuts only where put.
_MARK = f"nf-block-{secrets.token_hex(16)}"
_MARK_HTML = f"<!--{_MARK}-->"
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


@dataclass(frozen=True)
class _Layout:
    """The last email, taken apart: what a rebuild compares with and reuses."""

    floats: bool
    skeleton: tuple[str, ...]  # the parsed input around the blocks (one more than the blocks)
    raw: tuple[str, ...]  # each block (and the text after it) as parsed, before inlining
    pieces: tuple[str, ...]  # the output around the blocks
    out: tuple[str, ...]  # each block (and the text after it) as inlined

    def html(self) -> str:
        return "".join(p + b for p, b in zip(self.pieces, (*self.out, ""), strict=True))


class _Parsed:
    """One email parsed as premailer parses it, cut into its skeleton and its blocks."""

    def __init__(self, html: str) -> None:
        stripped = html.strip()
        self.tree = etree.fromstring(stripped, etree.HTMLParser()).getroottree()
        # premailer writes the doctype only if the input began with lxml's spelling of it
        self.top: Any = (
            self.tree if stripped.startswith(self.tree.docinfo.doctype) else self.tree.getroot()
        )
        self.blocks: list[Any] = _BLOCKS(self.tree)
        self.marks: list[Any] = []
        self.skeleton, self.raw = self.cut()

    def cut(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The skeleton's pieces and the blocks, as serialised now: one serialisation, the
        blocks between marks (a block's tail text, never styled, goes with it). The marks
        stay until `unmark`: a rebuild prunes them with the branches it cuts."""
        if not self.marks:
            for block in self.blocks:
                begin, end = etree.Comment(_MARK), etree.Comment(_MARK)
                block.addprevious(begin)
                block.addnext(end)
                self.marks += [begin, end]
        parts = _text(self.top).split(_MARK_HTML)
        return tuple(parts[0::2]), tuple(parts[1::2])

    def unmark(self) -> None:
        for mark in self.marks:
            mark.getparent().remove(mark)
        self.marks = []


def _text(node: Any, *, tail: bool = False) -> str:
    """An element (or the document) as premailer serialises the email."""
    data: bytes = etree.tostring(node, method="html", encoding="utf-8", with_tail=tail)
    return data.decode("utf-8")


def _local(selectors: Sequence[str]) -> bool:
    """Whether every inlined selector reads only an element and its ancestors."""
    return not any(_NOT_LOCAL.search(s) for s in selectors)


def _prune(tree: Any, keep: Sequence[Any]) -> None:
    """Cut every branch of <body> that holds none of `keep`: the kept blocks keep their
    ancestors, and the head its stylesheets, so premailer matches them as in the whole."""
    path: set[Any] = set()
    for block in keep:
        path.update(block.iterancestors())
    kept = set(keep)
    for node in path:
        if node.tag == "html":
            continue
        for child in list(node):
            if child not in path and child not in kept:
                node.remove(child)


class IncrementalInliner:
    """Keeps the layouts of the last few emails, so a rebuild inlines only the blocks that
    changed: one per Renderer, a few because a renderer alternates between the email and
    its web version (another skeleton). A layout is replaced whole, never changed in place,
    so threads sharing a renderer each read one consistent layout."""

    most_layouts = 4

    def __init__(self) -> None:
        self._layouts: OrderedDict[tuple[bool, tuple[str, ...]], _Layout] = OrderedDict()
        self._lock = threading.Lock()
        self.whole = 0  # how many emails were inlined whole, for the tests and benchmarks
        self.blocks_inlined = 0  # how many blocks the incremental path inlined

    def inline(self, html: str, *, floats: bool) -> str:
        parsed = _Parsed(html)
        with self._lock:
            last = self._layouts.get((floats, parsed.skeleton))
        if last is None:
            return self._whole(parsed, floats)
        changed = [i for i, raw in enumerate(parsed.raw) if raw != last.raw[i]]
        if not changed:
            return last.html()
        keep = [parsed.blocks[i] for i in changed]
        _prune(parsed.tree, keep)
        Inliner(parsed.tree.getroot(), floats=floats).transform(pretty_print=False)
        out = list(last.out)
        for i, block in zip(changed, keep, strict=True):
            out[i] = _text(block, tail=True)
        self.blocks_inlined += len(changed)
        layout = _Layout(floats, parsed.skeleton, parsed.raw, last.pieces, tuple(out))
        self._keep(layout)
        return layout.html()

    def _whole(self, parsed: _Parsed, floats: bool) -> str:
        """premailer over the whole tree; its layout kept only if it is safe and exact."""
        self.whole += 1
        parsed.unmark()
        # premailer reads a <style> anywhere; a rebuild keeps only <head> and the changed
        # blocks' ancestors, so an email with one in <body> is always inlined whole
        body_styles = bool(parsed.tree.xpath("//body//style"))
        inliner = Inliner(parsed.tree.getroot(), floats=floats)
        inliner.transform(pretty_print=False)
        whole = _text(parsed.top)
        pieces, out = parsed.cut()
        layout = _Layout(floats, parsed.skeleton, parsed.raw, pieces, out)
        exact = len(pieces) == len(out) + 1 and layout.html() == whole
        if exact and _local(inliner.selectors) and not body_styles:
            self._keep(layout)
        return whole

    def _keep(self, layout: _Layout) -> None:
        with self._lock:
            key = (layout.floats, layout.skeleton)
            self._layouts[key] = layout
            self._layouts.move_to_end(key)
            while len(self._layouts) > self.most_layouts:
                self._layouts.popitem(last=False)
