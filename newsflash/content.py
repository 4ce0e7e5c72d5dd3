"""Contributor Markdown to safe HTML and to plain text.

Contributor content is untrusted: Markdown goes through markdown-it-py and the result through
nh3 with a small allow-list, so no script, event handler, style or foreign scheme can reach a
partner's inbox. The plain text comes from the same Markdown tokens, never from the HTML.
"""

from __future__ import annotations

import functools
import html
import re
import textwrap
from dataclasses import dataclass

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsflash.content_rules import is_allowed_link, is_bad_url, links_in, strip_control_chars

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "h4",
    "code",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}
_URL_ATTR = re.compile(
    r"(?<![\w-])(?:href|src|action)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE
)
_HTML_IMG = re.compile(r"<img\b", re.IGNORECASE)
_HEADING = re.compile(r"<(/?)h[1-6]>")

_md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})


@dataclass(frozen=True)
class LinkIssue:
    """A link in the body that a partner's mail client must never be given."""

    line: int
    url: str


@dataclass(frozen=True)
class RenderedBody:
    html: str
    text: str
    bad_links: tuple[LinkIssue, ...]
    images: tuple[int, ...]  # lines of images in the body (not supported in emails)


def clean_html(fragment: str) -> str:
    """Sanitise HTML to the allow-list; external links get rel=noopener. Control characters
    written as entities (title="&#x0B;") come out of nh3 raw, so they are dropped after it."""
    return strip_control_chars(
        nh3.clean(
            fragment,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel="noopener noreferrer",
            url_relative="deny",
            strip_comments=True,
        )
    )


def _scan(tokens: list[Token], line: int, bad: list[LinkIssue], images: list[int]) -> None:
    for tok in tokens:
        here = tok.map[0] + 1 if tok.map else line
        if tok.type == "link_open":
            href = str(tok.attrs.get("href", ""))
            if not is_allowed_link(href):
                bad.append(LinkIssue(here, href))
        elif tok.type == "image":
            images.append(here)
        elif tok.type in ("html_inline", "html_block"):
            if _HTML_IMG.search(tok.content):
                images.append(here)
            for m in _URL_ATTR.finditer(tok.content):
                url = next(g for g in m.groups() if g is not None)
                if not is_allowed_link(html.unescape(url)):
                    bad.append(LinkIssue(here, url))
        if tok.children:
            _scan(tok.children, here, bad, images)


def _raw_bad_links(source: str) -> list[LinkIssue]:
    """markdown-it drops javascript: links to plain text; a contributor still needs telling."""
    found = []
    for m in re.finditer(r"\]\(\s*<?((?:[^()\s>]|\([^()\s]*\))+)", source):  # one level of (...)
        if is_bad_url(m.group(1)):
            found.append(LinkIssue(source.count("\n", 0, m.start()) + 1, m.group(1)))
    return found


def _text(tokens: list[Token]) -> str:
    """Plain text from Markdown tokens: paragraphs, bullets, and links as 'text <url>'."""
    plain = _PlainText()
    for tok in tokens:
        plain.block(tok)
    return plain.result()


class _PlainText:
    """The plain-text part being written: finished lines, the line under way, and the bullet
    or quote prefixes and list counters of the blocks it is inside."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.line: list[str] = []
        self.prefix: list[str] = []
        self.counters: list[int] = []

    def result(self) -> str:
        self.flush()
        return strip_control_chars(re.sub(r"\n{3,}", "\n\n", "\n".join(self.out)).strip())

    def flush(self) -> None:
        if self.line:
            self.out.append("".join(self.prefix) + "".join(self.line).strip())
            self.line.clear()

    def inline(self, children: list[Token]) -> None:
        href = ""
        for c in children:
            if c.type in ("text", "code_inline"):
                self.line.append(c.content)
            elif c.type in ("softbreak", "hardbreak"):
                self.line.append(" " if c.type == "softbreak" else "\n")
            elif c.type == "link_open":
                href = str(c.attrs.get("href", ""))
            elif c.type == "link_close" and href:
                self.line.append(f" <{href.removeprefix('mailto:')}>")
                href = ""
            elif c.type == "html_inline" and c.content.lower().startswith("<br"):
                self.line.append("\n")

    def block(self, tok: Token) -> None:
        if tok.type in ("bullet_list_open", "ordered_list_open", "list_item_open"):
            self._open_list(tok.type)
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            self.counters.pop()
            self.out.append("")
        elif tok.type == "list_item_close":
            self.flush()
            self.prefix.pop()
        elif tok.type == "blockquote_open":
            self.prefix.append("> ")
        elif tok.type == "blockquote_close":
            self.prefix.pop()
        elif tok.type == "inline" and tok.children is not None:
            self.inline(tok.children)
        elif tok.type in ("paragraph_close", "heading_close"):
            self.flush()
            if not self.counters:
                self.out.append("")
        elif tok.type in ("fence", "code_block"):
            self.out.extend(tok.content.rstrip("\n").split("\n"))
            self.out.append("")
        elif tok.type == "html_block":
            txt = nh3.clean(tok.content, tags=set()).strip()
            if txt:
                self.out.extend([html.unescape(txt), ""])

    def _open_list(self, kind: str) -> None:
        """A list starts (bullets count 0, numbers from 1), or an item in it: '- ' or 'n. '."""
        if kind == "bullet_list_open":
            self.counters.append(0)
        elif kind == "ordered_list_open":
            self.counters.append(1)
        else:
            n = self.counters[-1] if self.counters else 0
            self.prefix.append(f"{n}. " if n else "- ")
            if n:
                self.counters[-1] += 1


def render_markdown(source: str) -> RenderedBody:
    """Render a contributor's Markdown once: safe HTML, plain text, and what to complain about.

    Pure, so the result is kept by its text: the templates render the editorial and the
    closing through it on every build, and a warm rebuild should not parse them again."""
    return _render_markdown(str(source))


@functools.lru_cache(maxsize=256)
def _render_markdown(source: str) -> RenderedBody:
    tokens = _md.parse(source)
    bad: list[LinkIssue] = []
    images: list[int] = []
    _scan(tokens, 1, bad, images)
    seen = {(b.line, b.url) for b in bad}
    bad.extend(b for b in _raw_bad_links(source) if (b.line, b.url) not in seen)
    body = _md.renderer.render(tokens, _md.options, {})
    # Item titles are h3 under section h2s: demote any body heading to keep the outline.
    body = clean_html(_HEADING.sub(r"<\1h4>", body)).strip()
    # The build judges the sanitised HTML, so judge it here too: what the sanitiser changed
    # (an attribute it re-encoded, a link markdown-it built) is reported, not found at build.
    reported = {b.url for b in bad} | {html.unescape(b.url) for b in bad}
    for url in links_in(body):
        if not is_allowed_link(url) and url not in reported:
            bad.append(LinkIssue(1, url))
            reported.add(url)
    return RenderedBody(
        html=body,
        text=_text(tokens),
        bad_links=tuple(sorted(bad, key=lambda b: b.line)),
        images=tuple(images),
    )


_BULLET = re.compile(r"^(\s*(?:[-*>] |\d+\. ))")


def wrap_text(text: str, width: int = 76) -> str:
    """Wrap plain text for mail clients that don't, keeping bullets hanging and URLs whole.

    Kept by its text too: textwrap was half of rendering the plain-text part, on every build,
    for paragraphs that had not changed. (A plain str in: an escaped jinja2 Markup of the
    same characters must not share its entry.)"""
    return _wrap_text(str(text), width)


@functools.lru_cache(maxsize=4096)
def _wrap_text(text: str, width: int) -> str:
    out: list[str] = []
    for line in text.split("\n"):
        m = _BULLET.match(line)
        lead = m.group(1) if m else ""
        out.extend(
            textwrap.wrap(
                line,
                width=width,
                subsequent_indent=" " * len(lead),
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [""]
        )
    return "\n".join(out)


def inline_markdown(source: str) -> str:
    """Short config texts (editorial, closing) rendered with the same rules as items."""
    return render_markdown(source).html


def markdown_text(source: str) -> str:
    """The same texts for the plain-text part, as an item's text is written there: bold and
    links as words (a link's address after it), never the Markdown marks themselves."""
    return render_markdown(source).text
