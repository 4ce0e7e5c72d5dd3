"""Settling uncertain batches from SendGrid's word: who of them is proven accepted, and when the
rest may be resent.

An uncertain batch's request left, and no answer came. A SendGrid event for one of its
recipients (sending/settle.py picks them from state/events.sqlite) proves SendGrid took that
request: the recipient moves out of the uncertain batch into an accepted one of its own, with
the message id from the event, so `status` counts them accepted and `--resend-uncertain` never
mails them again. The move is one write transaction and only ever makes an uncertain recipient
accepted, which no later step undoes, so it needs no send lock: `status` settles while a send
runs. A batch still *in flight* is settled only by the holder of the send lock, who knows its
process is dead; anyone else might take it from under a send that is waiting for the answer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from newsflash.state.ledger_queries import LedgerQueries
from newsflash.state.ledger_records import LedgerRecipient, timestamp

__all__ = ["Doubtful", "LedgerSettle"]

SETTLED_REASON = "settled by SendGrid's events after no answer came"
_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit


@dataclass(frozen=True)
class Doubtful:
    """A recipient of an uncertain (or dead in-flight) batch, and when that batch went out."""

    recipient: LedgerRecipient
    sent_at: str


class LedgerSettle(LedgerQueries):
    """The part of `Ledger` that records what SendGrid's events prove about uncertain batches."""

    def _doubtful_states(self, edition_id: str) -> tuple[str, ...]:
        return ("uncertain", "in_flight") if edition_id in self._locks else ("uncertain",)

    def doubtful(self, edition_id: str) -> list[Doubtful]:
        """Recipients whose request may or may not have been taken, in list order."""
        states = self._doubtful_states(edition_id)
        marks = ", ".join("?" * len(states))
        with self._read() as conn:
            rows = conn.execute(
                "SELECT r.recipient_id, r.email, b.created_at FROM batches b CROSS JOIN "
                "recipients r ON r.batch_id = b.id AND r.edition_id = b.edition_id "
                f"WHERE b.edition_id = ? AND b.state IN ({marks}) ORDER BY r.seq",
                (edition_id, *states),
            ).fetchall()
        return [Doubtful(LedgerRecipient(rid, email), at) for rid, email, at in rows]

    def settle(self, edition_id: str, vouched: Mapping[str, str | None]) -> int:
        """Record as accepted the doubtful recipients SendGrid vouched for (recipient id ->
        message id, None when the event gave none); how many were settled."""
        if not vouched:
            return 0
        states = self._doubtful_states(edition_id)
        now = timestamp()
        with self._write() as conn:
            found = self._doubtful_batches(conn, edition_id, list(vouched), states)
            groups: dict[tuple[int, str | None], list[str]] = {}
            for rid, batch_id in found:
                groups.setdefault((batch_id, vouched[rid]), []).append(rid)
            for (batch_id, message_id), ids in groups.items():
                self._move_accepted(conn, edition_id, batch_id, message_id, ids, now)
            self._retire_empty(conn, {batch_id for batch_id, _ in groups}, now)
        return len(found)

    @staticmethod
    def _doubtful_batches(
        conn: sqlite3.Connection, edition_id: str, ids: list[str], states: tuple[str, ...]
    ) -> list[tuple[str, int]]:
        """(recipient id, batch id) of those among `ids` whose batch is in `states`."""
        marks = ", ".join("?" * len(states))
        found: list[tuple[str, int]] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            found += conn.execute(
                "SELECT r.recipient_id, r.batch_id FROM recipients r JOIN batches b "
                "ON b.id = r.batch_id WHERE r.edition_id = ? "
                f"AND r.recipient_id IN ({', '.join('?' * len(chunk))}) "
                f"AND b.state IN ({marks})",
                (edition_id, *chunk, *states),
            ).fetchall()
        return found

    @staticmethod
    def _move_accepted(
        conn: sqlite3.Connection,
        edition_id: str,
        batch_id: int,
        message_id: str | None,
        ids: list[str],
        now: str,
    ) -> None:
        """A new accepted batch, dated when the doubtful one went out, takes these recipients."""
        cursor = conn.execute(
            "INSERT INTO batches (edition_id, state, message_id, reason, attempts, created_at, "
            "updated_at) SELECT edition_id, 'accepted', ?, ?, attempts, created_at, ? "
            "FROM batches WHERE id = ?",
            (message_id, SETTLED_REASON, now, batch_id),
        )
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            conn.execute(
                "UPDATE recipients SET batch_id = ? WHERE edition_id = ? AND batch_id = ? "
                f"AND recipient_id IN ({', '.join('?' * len(chunk))})",
                (cursor.lastrowid, edition_id, batch_id, *chunk),
            )

    @staticmethod
    def _retire_empty(conn: sqlite3.Connection, batch_ids: set[int], now: str) -> None:
        """A doubtful batch left with nobody is superseded, so no empty batch reads uncertain."""
        for batch_id in batch_ids:
            conn.execute(
                "UPDATE batches SET state = 'superseded', updated_at = ? WHERE id = ? "
                "AND NOT EXISTS (SELECT 1 FROM recipients WHERE batch_id = ?)",
                (now, batch_id, batch_id),
            )

    def held_back(self, edition_id: str, cutoff: str) -> tuple[int, str | None]:
        """How many doubtful recipients went out after `cutoff` (too recently to resend), and
        when the earliest of their batches went out."""
        with self._read() as conn:
            n, first = conn.execute(
                "SELECT COUNT(*), MIN(b.created_at) FROM batches b CROSS JOIN recipients r "
                "ON r.batch_id = b.id AND r.edition_id = b.edition_id WHERE b.edition_id = ? "
                "AND b.state IN ('uncertain', 'in_flight') AND b.created_at > ?",
                (edition_id, cutoff),
            ).fetchone()
        return int(n), first
