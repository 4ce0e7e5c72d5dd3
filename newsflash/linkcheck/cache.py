"""Recent link results in state/links.sqlite, so a second check does not fetch again.

A link found working is reused for `cache_hours`; a dead one is kept (the send reads it to
warn) but always fetched again by the next check, since a server that was down for a minute
should not stay "dead" for a day. Times are passed in, so tests set the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from newsflash.linkcheck.result import LinkResult
from newsflash.state.sqlite import WalDatabase

__all__ = ["LinkCache"]

FILE = "links.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    url        TEXT PRIMARY KEY,
    ok         INTEGER NOT NULL,
    status     INTEGER,
    reason     TEXT NOT NULL,
    final_url  TEXT NOT NULL,
    checked_at REAL NOT NULL
);
"""


class LinkCache:
    """The last result of every URL checked, with when it was checked (Unix seconds)."""

    def __init__(self, state_dir: Path) -> None:
        self._db = WalDatabase(state_dir / FILE, _SCHEMA, 1)

    def close(self) -> None:
        self._db.close()

    def fresh(self, urls: Iterable[str], now: float, ttl_seconds: float) -> dict[str, LinkResult]:
        """Working results checked within `ttl_seconds` before `now`."""
        wanted = list(dict.fromkeys(urls))
        return {
            url: result
            for url, (result, at) in self.last(wanted).items()
            if result.ok and 0 <= now - at < ttl_seconds
        }

    def last(self, urls: Sequence[str]) -> dict[str, tuple[LinkResult, float]]:
        """The stored result of each URL that has one, with the time it was checked."""
        out: dict[str, tuple[LinkResult, float]] = {}
        with self._db.read() as conn:
            for url in urls:
                row = conn.execute(
                    "SELECT ok, status, reason, final_url, checked_at FROM links WHERE url = ?",
                    (url,),
                ).fetchone()
                if row is not None:
                    ok, status, reason, final, at = row
                    out[url] = (LinkResult(url, bool(ok), status, reason, final), float(at))
        return out

    def store(self, results: Iterable[LinkResult], now: float) -> None:
        rows = [(r.url, int(r.ok), r.status, r.reason, r.final_url, now) for r in results]
        with self._db.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?, ?, ?)", rows)
