"""MJML to HTML by its text blocks: a rebuild after one item's text changed renders that
item's mj-text content alone and splices it into the last email's HTML.

mjml-python (MRML) writes an mj-text's content on its own: it parses the content and writes
it back inside the block's <div> (attributes double-quoted, `<br />`, some whitespace
dropped), and nothing else in the email depends on it (the widths, tables and head styles
come from the elements and their attributes). So an email whose MJML differs from the last
one's only inside mj-text contents is the last one's HTML with those contents written again;
the rendering of the whole edition (1.6 to 2 ms for 30 items) becomes one of a few hundred
bytes (about 25 us).

That is a claim about MRML, so it is checked where checking is cheap, never trusted alone:
- a layout (the HTML around each content, read from a render with every content replaced
  by a numbered mark) is kept only if the email rendered whole equals that layout filled
  with each content rendered alone;
- a content is rendered alone in a fixed probe document, whose rest must come out exactly
  as it does around a mark;
- anything else (another skeleton: a template, a title in the head, an item added; a content
  that holds an MJML tag; a probe that fails) renders the whole email, as before.
tests/test_render_splice.py holds splices of random contents to whole renders.
"""

from __future__ import annotations

import bisect
import re
import secrets
from dataclasses import dataclass

import mjml

from newsflash.render_cut import Recent, common_prefix, common_suffix

# An mj-text start tag whose attributes are all quoted (a '>' in a value stays in the tag),
# or its end tag; `<mj-text ... />` in mj-attributes is neither.
_TAG = re.compile(r"""<mj-text(?:\s+[\w:.-]+=(?:"[^"]*"|'[^']*'))*\s*>|</mj-text\s*>""")
# A random mark per process: no email holds it, so it is found only where it was put.
MARK = f"nfsplice{secrets.token_hex(8)}"
_PROBE = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>{}</mj-text></mj-column></mj-section>"
    "</mj-body></mjml>"
)
MOST_PROBED = 4096  # contents kept rendered alone: an edition's, a few editions over


def mjml_html(source: str) -> str:
    """MRML's HTML for `source`, offline and without comments, as every email is rendered."""
    html: str = mjml.mjml2html(source, fonts={}, disable_comments=True)
    return html


def _rendered(source: str) -> str | None:
    """mjml_html, or None where MRML refuses the text: a bare exception type from Rust, or a
    panic in its parser (pyo3's PanicException, which is no Exception)."""
    try:
        return mjml_html(source)
    except Exception:
        return None
    except BaseException as e:
        if type(e).__name__ != "PanicException":
            raise
        return None


@dataclass(frozen=True)
class Cut:
    """An MJML text cut at its mj-text contents: `skeleton` around them (one more piece)."""

    skeleton: tuple[str, ...]
    contents: tuple[str, ...]
    spans: tuple[tuple[int, int], ...] = ()  # where each content is in the text

    def recut(self, old: str, new: str) -> Cut | None:
        """`new` cut as `old` is (this cut's text), if the two differ only inside one content
        and that content stays text: found from each end, no tag read. As cut_mjml would cut
        it: a tag cannot straddle a content's edge (the tag before it ends in '>', the one
        after it is `</mj-text>`, and no part of one of them followed by that is a tag)."""
        head = common_prefix(old, new)
        tail = common_suffix(old, new, min(len(old), len(new)) - head)
        n = bisect.bisect_right(self.spans, (head, len(old))) - 1
        if n < 0 or len(old) - tail > self.spans[n][1]:
            return None
        start, end = self.spans[n]
        delta = len(new) - len(old)
        content = new[start : end + delta]
        if "<mj-" in content or "</mj-" in content:
            return None
        spans = [*self.spans[:n], (start, end + delta)]
        spans += [(a + delta, b + delta) for a, b in self.spans[n + 1 :]]
        contents = (*self.contents[:n], content, *self.contents[n + 1 :])
        return Cut(self.skeleton, contents, tuple(spans))


def cut_mjml(source: str) -> Cut | None:
    """The mj-text contents of `source` and the text around them; None where they nest, are
    not closed, or hold an MJML tag (the content would then be more than text)."""
    skeleton: list[str] = []
    contents: list[str] = []
    spans: list[tuple[int, int]] = []
    start = 0
    opened: int | None = None  # where the open content begins
    for m in _TAG.finditer(source):
        closing = m.group().startswith("</")
        if closing != (opened is not None):
            return None
        if opened is None:
            skeleton.append(source[start : m.end()])
            opened = m.end()
        else:
            contents.append(source[opened : m.start()])
            spans.append((opened, m.start()))
            start, opened = m.start(), None
    if opened is not None or any("<mj-" in c or "</mj-" in c for c in contents):
        return None
    skeleton.append(source[start:])
    return Cut(tuple(skeleton), tuple(contents), tuple(spans))


@dataclass(frozen=True)
class _Layout:
    """The last email: its cut, the HTML around its contents and each content's HTML."""

    source: str
    cut: Cut
    around: tuple[str, ...]
    rendered: tuple[str, ...]

    def html(self) -> str:
        parts = [a + r for a, r in zip(self.around, self.rendered, strict=False)]
        return "".join(parts) + self.around[-1]


class Splicer:
    """MJML to HTML, keeping the layouts of the last few emails so that a rebuild renders
    only the mj-text contents that changed: a few, because a renderer alternates between the
    email and its web version (another skeleton). A layout is replaced whole, never changed
    in place, so threads sharing a renderer each read one consistent layout. `whole` and
    `spliced` count the two ways, for the tests and benchmarks."""

    most_layouts = 4

    def __init__(self) -> None:
        self._layouts: Recent[tuple[str, ...], _Layout] = Recent(self.most_layouts)
        self._alone: dict[str, str] = {}
        self._probe_around: tuple[str, str] | None = None
        self.whole = 0
        self.spliced = 0

    def render(self, source: str) -> str:
        """The HTML of `source`, byte for byte what mjml_html gives; raises as it does."""
        last, found = self._recut(source)
        spliced = self._splice(last, source, found) if found is not None else None
        if spliced is not None:
            self._keep(spliced)
            self.spliced += 1
            return spliced.html()
        html = mjml_html(source)
        self.whole += 1
        layout = self._layout(source, found, html) if found is not None else None
        if layout is not None:
            self._keep(layout)
        return html

    def _recut(self, source: str) -> tuple[_Layout | None, Cut | None]:
        """The layout to start from and `source` cut as its text is: from a recent layout's
        text when they differ inside one content, else by reading the tags."""
        for layout in self._layouts.newest_first():
            found = layout.cut.recut(layout.source, source)
            if found is not None:
                return layout, found
        found = cut_mjml(source)
        if found is None:
            return None, None
        return self._layouts.get(found.skeleton), found

    def _keep(self, layout: _Layout) -> None:
        self._layouts.keep(layout.cut.skeleton, layout)

    def _splice(self, last: _Layout | None, source: str, found: Cut) -> _Layout | None:
        """`last` with the changed contents rendered alone; None unless only contents
        changed and each renders alone."""
        if last is None or found.skeleton != last.cut.skeleton:
            return None
        rendered = list(last.rendered)
        for n, (new, old) in enumerate(zip(found.contents, last.cut.contents, strict=True)):
            if new != old:
                alone = self.render_alone(new)
                if alone is None:
                    return None
                rendered[n] = alone
        return _Layout(source, found, last.around, tuple(rendered))

    def _layout(self, source: str, found: Cut, html: str) -> _Layout | None:
        """The layout of an email rendered whole, if filling it with each content rendered
        alone gives exactly that email."""
        marked = [f"{s}{MARK}{n}." for n, s in enumerate(found.skeleton[:-1])]
        whole = _rendered("".join(marked) + found.skeleton[-1])
        if whole is None:
            return None
        pieces = whole.split(MARK)
        if len(pieces) != len(found.contents) + 1:
            return None
        around = [pieces[0]]
        for n, piece in enumerate(pieces[1:]):
            number = f"{n}."
            if not piece.startswith(number):
                return None
            around.append(piece[len(number) :])
        rendered = [self.render_alone(c) for c in found.contents]
        if any(r is None for r in rendered):
            return None
        layout = _Layout(source, found, tuple(around), tuple(r or "" for r in rendered))
        return layout if layout.html() == html else None

    def render_alone(self, content: str) -> str | None:
        """What MRML writes for one mj-text content, from a probe document whose rest comes
        out exactly as around a mark; None if it does not (or the content will not render)."""
        kept = self._alone.get(content)
        if kept is not None:
            return kept
        if self._probe_around is None:
            head, _, tail = mjml_html(_PROBE.format(MARK)).partition(MARK)
            self._probe_around = head, tail
        head, tail = self._probe_around
        html = _rendered(_PROBE.format(content))  # None: the whole render then raises
        fits = html is not None and len(html) >= len(head) + len(tail)
        if html is None or not (fits and html.startswith(head) and html.endswith(tail)):
            return None
        alone = html[len(head) : len(html) - len(tail)]
        if len(self._alone) >= MOST_PROBED:
            self._alone.clear()
        self._alone[content] = alone
        return alone
