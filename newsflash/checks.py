"""Checks every build runs on the finished HTML: Gmail clipping, links, image alt text."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

from newsflash.content_rules import is_allowed_link

Level = Literal["ok", "warning", "error"]
_LINK_OR_IMAGE = re.compile(r"<(?:a|img)\b[^>]*>", re.IGNORECASE)
# A tag as lxml writes it (name="value" attributes): the parser reads it alone exactly as it
# reads it among the others, so what it says can be kept by the tag's text.
_PLAIN_TAG = re.compile(r'<(?:a|img)(?:\s+[a-zA-Z_:][-\w:.]*(?:="[^"]*")?)*\s*/?>\Z')
Links = list[str]
Images = list[tuple[str, str | None]]


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    message: str


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.links.append(a["href"] or "")
        elif tag == "img":
            self.images.append((a.get("src") or "", a.get("alt")))


@functools.lru_cache(maxsize=4096)
def _tag_alone(tag: str) -> tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]] | None:
    """The links and images one plain tag holds; None for any other (read with the rest)."""
    if not _PLAIN_TAG.match(tag):
        return None
    scan = _Scan()
    scan.feed(tag)
    return (tuple(scan.links), tuple(scan.images)) if not scan.rawdata else None


def _scan_tags(tags: Sequence[str]) -> tuple[Links, Images]:
    """The links and images of the email's <a> and <img> tags, each plain tag read once per
    process: a rebuild after one item changed reads only that item's new tags. A tag that is
    not plain has the whole list read together, as before."""
    links: Links = []
    images: Images = []
    for tag in tags:
        alone = _tag_alone(tag)
        if alone is None:
            scan = _Scan()
            scan.feed("".join(tags))
            return scan.links, scan.images
        links += alone[0]
        images += alone[1]
    return links, images


def _link_ok(href: str) -> bool:
    """The item check's rule (content_rules.is_allowed_link), plus the email's own anchors."""
    if href.startswith("#") and len(href) > 1:
        return True  # table of contents inside the email
    return is_allowed_link(href)


def run_checks(html: str, *, warn_kb: int, limit_kb: int) -> list[Check]:
    """Pure: the HTML in, a list of findings out; the CLI decides what an error stops."""
    checks: list[Check] = []
    size = len(html.encode("utf-8"))
    kb = size / 1024
    if kb > limit_kb:
        checks.append(
            Check(
                "size",
                "error",
                f"HTML is {kb:.1f} KB: Gmail clips emails over "
                f"~{limit_kb} KB. Shorten items or move text behind 'read more' "
                "links (or build with --allow-clip).",
            )
        )
    elif kb > warn_kb:
        checks.append(
            Check(
                "size",
                "warning",
                f"HTML is {kb:.1f} KB, near Gmail's ~{limit_kb} KB clipping limit.",
            )
        )
    else:
        checks.append(Check("size", "ok", f"HTML is {kb:.1f} KB (Gmail clips at ~{limit_kb} KB)."))
    # Only <a> and <img> matter: parse just those tags, not the whole email (20x faster).
    links, images = _scan_tags(_LINK_OR_IMAGE.findall(html))
    bad = sorted({h for h in links if not _link_ok(h)})
    if bad:
        checks.append(
            Check(
                "links",
                "error",
                "links that are not absolute http(s)/mailto: "
                + ", ".join(repr(b) for b in bad[:10]),
            )
        )
    else:
        checks.append(Check("links", "ok", f"{len(links)} links, all absolute."))
    no_alt = sorted({src for src, alt in images if not (alt or "").strip()})
    if no_alt:
        checks.append(Check("alt", "error", "images without alt text: " + ", ".join(no_alt[:10])))
    else:
        checks.append(Check("alt", "ok", f"{len(images)} images, all with alt text."))
    return checks
