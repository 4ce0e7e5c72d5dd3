"""What a link check found: one URL's result, a dead link where it is written, the report.

Plain data, without httpx, so the report, the CLI and the send can name them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsflash.linkcheck.found import FoundLink

__all__ = ["DeadLink", "LinkReport", "LinkResult"]


@dataclass(frozen=True)
class LinkResult:
    """What one URL answered. `ok` is a 2xx or 3xx reached within the limits."""

    url: str
    ok: bool
    status: int | None  # the final HTTP status, None when none came
    reason: str  # for a dead link: what a contributor is told
    final_url: str = ""  # where redirects led, when they led elsewhere


@dataclass(frozen=True)
class DeadLink:
    """A link that did not work, where it is written and why it failed."""

    link: FoundLink
    result: LinkResult

    def __str__(self) -> str:
        return (
            f"{self.link.where}: {self.link.url} ({self.result.reason}) in '{self.link.item_title}'"
        )


@dataclass(frozen=True)
class LinkReport:
    links: tuple[FoundLink, ...]
    fetched: int  # distinct URLs fetched now
    from_cache: int  # distinct URLs answered from the cache
    dead: tuple[DeadLink, ...]

    @property
    def distinct(self) -> int:
        return self.fetched + self.from_cache

    def by_contact(self) -> dict[str, list[DeadLink]]:
        """Dead links grouped by the item's contact ('' for items without one)."""
        out: dict[str, list[DeadLink]] = {}
        for d in self.dead:
            out.setdefault(d.link.contact, []).append(d)
        return out
