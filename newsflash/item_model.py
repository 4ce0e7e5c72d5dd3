"""What an item file becomes: an `Item`, or `Problem`s naming the file, field and line.

Plain frozen dataclasses apart from the parser (item_parser.py), so that what only carries
items (the edition, the renderer, an item kept from an earlier parse) imports no YAML or
Markdown reader.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, in words a contributor can act on."""

    path: str
    message: str
    field: str | None = None
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line else "")
        what = f"{self.field}: " if self.field else ""
        return f"{where}: {self.severity}: {what}{self.message}"


@dataclass(frozen=True)
class Item:
    """A validated item with its body already sanitised; immutable so editions can share it."""

    key: str
    sha256: str
    title: str
    section: str
    date: dt.date
    status: str = "ready"
    author: str = ""
    organisation: str = ""
    summary: str = ""
    link: str = ""
    link_text: str = "Read more"
    image: str = ""
    image_alt: str = ""
    order: int = 100
    edition: str | None = None
    contact: str = ""
    body_html: str = ""
    body_text: str = ""
    anchor: str = field(default="", compare=False)


@dataclass(frozen=True)
class LoadResult:
    items: tuple[Item, ...]
    problems: tuple[Problem, ...]
    failed: tuple[str, ...]  # keys of files that yielded no item

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")
