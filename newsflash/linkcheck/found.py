"""Where each link of an edition comes from: the item, its file and the line it is written on.

A contributor fixes a dead link in a file, so a report that says only "https://x is dead" sends
them searching; this names the file and the line, as `newsflash check` does for every other
problem. The line is found in the source text the item was parsed from.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from newsflash.edition import item_links
from newsflash.items import Item

__all__ = ["FoundLink", "is_web_link", "item_links", "links_of_items"]


@dataclass(frozen=True)
class FoundLink:
    """One link as a partner would see it, and where its contributor wrote it."""

    url: str
    item_key: str
    item_title: str
    contact: str
    path: Path
    line: int | None

    @property
    def where(self) -> str:
        return f"{self.path}" + (f":{self.line}" if self.line else "")


def is_web_link(url: str) -> bool:
    """Only http(s) links can be fetched; mailto: and in-message anchors are not checked."""
    return url.lower().startswith(("http://", "https://"))


def _line_of(lines: list[str], url: str) -> int | None:
    """The first line holding the link as written (raw, or with its & as &amp;), whole: a
    link to /page is not found inside /page2."""
    forms = sorted({url, html.escape(url, quote=False)}, key=len, reverse=True)
    pattern = re.compile("(?:" + "|".join(map(re.escape, forms)) + r")(?![^\s)\]\"'<>])")
    for number, text in enumerate(lines, start=1):
        if pattern.search(text):
            return number
    return None


def _source_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []  # the item loaded from it a moment ago; without the text, no line numbers


def links_of_items(items: Iterable[Item], folder: Path) -> list[FoundLink]:
    """Every web link of `items`, in order, with the file (under `folder`) and line."""
    found: list[FoundLink] = []
    for item in items:
        path = folder / item.key
        lines = _source_lines(path)
        for url in dict.fromkeys(item_links(item)):
            if is_web_link(url):
                found.append(
                    FoundLink(url, item.key, item.title, item.contact, path, _line_of(lines, url))
                )
    return found
