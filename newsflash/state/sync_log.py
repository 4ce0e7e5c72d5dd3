"""Which lifts newsflash has already carried over to SendGrid (state/suppression-sync.sqlite).

A lift made here (the secretariat's `suppressions lift`, a partner's undo) must also take the
address off SendGrid's list, or SendGrid keeps dropping the mail newsflash now sends. Once that
is done, the address reappearing on SendGrid's list is a *new* opt-out, to be recorded: this
log is how the next sync tells the two apart where SendGrid gives no time (ASM groups).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from newsflash.state.sqlite import WalDatabase

__all__ = ["SyncLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lifts_carried (
    suppression_id INTEGER PRIMARY KEY,
    carried_at     TEXT NOT NULL
);
"""


class SyncLog:
    """The ids of lifted suppressions whose lift no longer needs carrying to SendGrid."""

    def __init__(self, path: Path) -> None:
        self._db = WalDatabase(path, _SCHEMA, 1)
        self.path = self._db.path

    @classmethod
    def in_state(cls, state_dir: Path) -> SyncLog:
        return cls(state_dir / "suppression-sync.sqlite")

    def close(self) -> None:
        self._db.close()

    def carried(self) -> frozenset[int]:
        with self._db.read() as conn:
            return frozenset(i for (i,) in conn.execute("SELECT suppression_id FROM lifts_carried"))

    def mark(self, suppression_ids: Iterable[int], at: datetime) -> None:
        stamp = at.astimezone(UTC).isoformat(timespec="seconds")
        with self._db.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO lifts_carried (suppression_id, carried_at) VALUES (?, ?)",
                [(i, stamp) for i in suppression_ids],
            )
