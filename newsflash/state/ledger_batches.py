"""Changing the ledger: freezing an edition's recipients, claiming and settling batches, reset.

Every recipient of an edition is always in exactly one known state, whatever moment a send is
killed at:

* *pending*: not handed to SendGrid yet;
* *in flight*: its batch was committed as in flight before the request went out;
* *accepted*: SendGrid answered 2xx (we keep its X-Message-Id to trace complaints);
* *failed*: SendGrid definitely refused (e.g. HTTP 400), so it was not sent and is retried;
* *uncertain*: the request may or may not have been delivered (no answer, a timeout, a crash).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import NoReturn

from newsflash.errors import LedgerError
from newsflash.recipient_ids import recipient_id
from newsflash.state.ledger_lock import SendLock
from newsflash.state.ledger_queries import LedgerQueries, fetch_recipients
from newsflash.state.ledger_records import Batch, EditionStatus, LedgerRecipient, timestamp

__all__ = ["LedgerBatches"]

_IN_FLIGHT_LOST = "no answer was recorded: the sending process died or timed out mid-request"


def _folded(email: str) -> str:
    """An address as two rows of one person would share it (Python's case rules, not SQL's)."""
    return email.strip().lower()


def _refuse_duplicates(edition_id: str, found: str) -> NoReturn:
    """Raised inside the freeze's transaction, so nothing is left half-frozen."""
    raise LedgerError(
        f"edition {edition_id} can't start: {found}; "
        "each person must appear once in the recipient list"
    )


def _refuse_shared_addresses(conn: sqlite3.Connection, edition_id: str) -> None:
    """Two ids with one address would be a double send the ledger could not see. Skipped when
    every id is `recipient_id` of its own folded address (as a send's are): one address then
    has one id, so the primary key has already refused a repeat, and the grouped query over
    every frozen address (a fifth of freezing 30k) is not needed."""
    conn.create_function("folded", 1, _folded, deterministic=True)
    twice = conn.execute(
        "SELECT folded(email) AS k FROM recipients WHERE edition_id = ? "
        "GROUP BY k HAVING COUNT(*) > 1 ORDER BY k LIMIT 20",
        (edition_id,),
    ).fetchall()
    if twice:
        _refuse_duplicates(edition_id, "duplicate emails: " + ", ".join(k for (k,) in twice))


class LedgerBatches(SendLock, LedgerQueries):
    """The part of `Ledger` that writes a send's progress; each write needs the send lock."""

    def start_send(
        self,
        edition_id: str,
        manifest_hash: str,
        manifest_json: str,
        recipients: Iterable[LedgerRecipient],
        *,
        resend_uncertain: bool = False,
        uncertain_before: str | None = None,
    ) -> EditionStatus:
        """Freeze the recipients on the first run; on later runs, pick up where the last stopped.

        The recipient list is frozen when the send first starts and later ``recipients`` are
        ignored: an edition is one mailing to one list, and letting it grow mid-send would make
        "who got it" unanswerable. A partner added after the send started gets the next edition.

        Batches still in flight belonged to a process that died or timed out (we hold the lock,
        so nobody else is sending): SendGrid may or may not have taken them, so they become
        uncertain and are resent only when the user asks (``resend_uncertain=True``), because a
        duplicate is the user's call; with ``uncertain_before`` (a `timestamp()`), only batches
        that went out by then, so SendGrid's events have had time to settle them first
        (ledger_settle). Failed batches were definitely refused, so their recipients are
        retried without asking.
        """
        self._require_lock(edition_id, "start_send")
        try:
            json.loads(manifest_json)
        except ValueError as exc:
            raise LedgerError(f"manifest of edition {edition_id} is not valid JSON: {exc}") from exc
        now = timestamp()
        with self._write() as conn:
            row = conn.execute(
                "SELECT manifest_hash FROM sends WHERE edition_id = ?", (edition_id,)
            ).fetchone()
            if row is None:
                self._freeze(conn, edition_id, manifest_hash, manifest_json, recipients, now)
            else:
                again = (uncertain_before or now) if resend_uncertain else None
                self._resume(conn, edition_id, row[0], manifest_hash, again, now)
        return self.status(edition_id)

    @staticmethod
    def _freeze(
        conn: sqlite3.Connection,
        edition_id: str,
        manifest_hash: str,
        manifest_json: str,
        recipients: Iterable[LedgerRecipient],
        now: str,
    ) -> None:
        """Streamed into the table, so no list of a million recipients is ever held; the
        primary key finds a repeated id, and a repeated address (`_refuse_shared_addresses`)."""
        conn.execute(
            "INSERT INTO sends (edition_id, manifest_hash, manifest_json, started_at, total) "
            "VALUES (?, ?, ?, ?, 0)",
            (edition_id, manifest_hash, manifest_json, now),
        )
        last: list[str] = [""]  # the id being inserted when the primary key objects
        derived = [True]  # every id so far is recipient_id() of its own folded address

        def rows() -> Iterator[tuple[str, str, str, int, str | None]]:
            for seq, r in enumerate(recipients, 1):
                last[0] = rid = r.recipient_id
                if derived[0] and not r.derived and rid != recipient_id(_folded(r.email)):
                    derived[0] = False
                yield edition_id, rid, r.email, seq, r.organisation

        try:
            conn.executemany(
                "INSERT INTO recipients (edition_id, recipient_id, email, seq, organisation) "
                "VALUES (?, ?, ?, ?, ?)",
                rows(),
            )
        except sqlite3.IntegrityError:
            _refuse_duplicates(edition_id, f"duplicate recipient ids: {last[0]}")
        if not derived[0]:
            _refuse_shared_addresses(conn, edition_id)
        conn.execute(
            "UPDATE sends SET total = (SELECT COUNT(*) FROM recipients WHERE edition_id = ?) "
            "WHERE edition_id = ?",
            (edition_id, edition_id),
        )

    def _resume(
        self,
        conn: sqlite3.Connection,
        edition_id: str,
        frozen_hash: str,
        manifest_hash: str,
        uncertain_before: str | None,
        now: str,
    ) -> None:
        """`uncertain_before`: resend uncertain batches that went out by then (None: none)."""
        if frozen_hash != manifest_hash:
            if self._accepted_any(conn, edition_id):
                way_out = "make them a new edition"
            else:
                way_out = (
                    "make them a new edition, or, as nothing was accepted yet, "
                    f"reset edition {edition_id} and send it again"
                )
            raise LedgerError(
                f"edition {edition_id} changed after sending started: the ledger froze manifest "
                f"{frozen_hash}, the edition now has manifest {manifest_hash}; "
                f"to send the changes, {way_out}"
            )
        conn.execute(
            "UPDATE batches SET state = 'uncertain', reason = ?, updated_at = ? "
            "WHERE edition_id = ? AND state = 'in_flight'",
            (_IN_FLIGHT_LOST, now, edition_id),
        )
        # '' sorts before every timestamp: no uncertain batch qualifies.
        cutoff = uncertain_before if uncertain_before is not None else ""
        which = "edition_id = ? AND (state = 'failed' OR (state = 'uncertain' AND created_at <= ?))"
        old = f"SELECT id FROM batches WHERE {which}"
        conn.execute(
            "INSERT INTO superseded (batch_id, edition_id, recipient_id) "
            f"SELECT batch_id, edition_id, recipient_id FROM recipients WHERE batch_id IN ({old})",
            (edition_id, cutoff),
        )
        moved = conn.execute(
            f"UPDATE recipients SET batch_id = NULL WHERE batch_id IN ({old})",
            (edition_id, cutoff),
        ).rowcount
        conn.execute(
            f"UPDATE batches SET state = 'superseded', updated_at = ? WHERE {which}",
            (now, edition_id, cutoff),
        )
        if moved:
            conn.execute("UPDATE sends SET finished_at = NULL WHERE edition_id = ?", (edition_id,))

    def next_batch(self, edition_id: str, size: int) -> Batch | None:
        """Claim the next pending recipients, in file order, and commit them as in flight.

        The commit happens before the caller sends anything: if the process is killed after the
        request left, the next run finds the batch in flight and treats it as uncertain rather
        than pending, which is what keeps a crash from becoming a double send.
        """
        if size < 1:
            raise ValueError(f"batch size must be at least 1, not {size}")
        self._require_lock(edition_id, "next_batch")
        now = timestamp()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO batches (edition_id, state, created_at, updated_at) "
                "SELECT edition_id, 'in_flight', ?, ? FROM sends WHERE edition_id = ?",
                (now, now, edition_id),
            )
            batch_id = cursor.lastrowid
            if cursor.rowcount != 1 or batch_id is None:  # the edition was never started
                conn.execute("ROLLBACK")
                return None
            claimed = conn.execute(
                # By rowid, which recipients_by_batch carries: an index on (edition_id, seq)
                # only for this would make freezing 100k recipients a third slower.
                "UPDATE recipients SET batch_id = ? WHERE rowid IN ("
                "  SELECT rowid FROM recipients WHERE batch_id IS NULL AND edition_id = ?"
                "  ORDER BY seq LIMIT ?)",
                (batch_id, edition_id, size),
            ).rowcount
            if claimed == 0:
                conn.execute("ROLLBACK")  # no empty batches: they would muddle the history
                return None
            members = "SELECT seq, recipient_id, email FROM recipients WHERE batch_id = ?"
            claimed_recipients = fetch_recipients(conn, members, (batch_id,))
            # How often these people have been handed out, so a status can show retries.
            (earlier,) = conn.execute(
                "SELECT COALESCE(MAX(n), 0) FROM ("
                "  SELECT COUNT(*) AS n FROM superseded s JOIN recipients r"
                "  ON r.edition_id = s.edition_id AND r.recipient_id = s.recipient_id"
                "  WHERE r.batch_id = ? GROUP BY s.recipient_id)",
                (batch_id,),
            ).fetchone()
            if earlier:
                conn.execute(
                    "UPDATE batches SET attempts = ? WHERE id = ?", (earlier + 1, batch_id)
                )
        return Batch(
            id=batch_id,
            edition_id=edition_id,
            recipients=tuple(claimed_recipients),
        )

    def mark_accepted(self, batch_id: int, message_id: str | None) -> None:
        """Also settles an uncertain batch: a late 2xx is the best evidence there is."""
        self._transition(batch_id, "accepted", ("in_flight", "uncertain"), message_id, None)

    def mark_failed(self, batch_id: int, reason: str) -> None:
        """Only for a definite refusal; anything that might have been delivered is uncertain."""
        self._transition(batch_id, "failed", ("in_flight", "uncertain"), None, reason)

    def mark_uncertain(self, batch_id: int, reason: str) -> None:
        self._transition(batch_id, "uncertain", ("in_flight",), None, reason)

    def skip_pending(self, edition_id: str, recipient_ids: Sequence[str], reason: str) -> int:
        """Settle pending recipients who must not be sent (e.g. unsubscribed since the send
        started) as failed, in a batch of their own that is never requested.

        Failed is the right state: they were definitely not sent. Like any failed batch it is
        superseded at the next start, so each run checks them again against the partner list.
        Returns how many were settled (only pending ones are touched).
        """
        self._require_lock(edition_id, "skip_pending")
        if not recipient_ids:
            return 0
        now = timestamp()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO batches (edition_id, state, reason, created_at, updated_at) "
                "SELECT edition_id, 'failed', ?, ?, ? FROM sends WHERE edition_id = ?",
                (reason, now, now, edition_id),
            )
            batch_id = cursor.lastrowid
            if cursor.rowcount != 1 or batch_id is None:
                conn.execute("ROLLBACK")
                return 0
            changed = 0
            ids = list(dict.fromkeys(recipient_ids))
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                changed += conn.execute(
                    f"UPDATE recipients SET batch_id = ? WHERE edition_id = ? AND batch_id IS NULL "
                    f"AND recipient_id IN ({', '.join('?' * len(chunk))})",
                    (batch_id, edition_id, *chunk),
                ).rowcount
            if changed == 0:
                conn.execute("ROLLBACK")
        return changed

    def _transition(
        self,
        batch_id: int,
        state: str,
        allowed_from: tuple[str, ...],
        message_id: str | None,
        reason: str | None,
    ) -> None:
        marks = ", ".join("?" * len(allowed_from))
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE batches SET state = ?, message_id = COALESCE(?, message_id), "
                f"reason = ?, updated_at = ? WHERE id = ? AND state IN ({marks})",
                (state, message_id, reason, timestamp(), batch_id, *allowed_from),
            ).rowcount
            if changed:
                return
            row = conn.execute("SELECT state FROM batches WHERE id = ?", (batch_id,)).fetchone()
        # Refusing keeps a stale caller (e.g. one whose batch a later run superseded and resent)
        # from rewriting what happened.
        if row is None:
            raise LedgerError(f"batch {batch_id} is not in the ledger")
        raise LedgerError(f"batch {batch_id} is already {row[0]}; it can't become {state}")

    def finish(self, edition_id: str) -> None:
        """Record the end of the run that left nothing to send; failed/uncertain ones may remain,
        which the status shows."""
        with self._write() as conn:
            conn.execute(
                # Two index lookups (pending; a non-empty in-flight batch) instead of a scan of
                # every recipient, which cost ~0.15 s at the end of a 100k send.
                "UPDATE sends SET finished_at = ? WHERE edition_id = ? AND NOT EXISTS ("
                "  SELECT 1 FROM recipients WHERE batch_id IS NULL AND edition_id = ?"
                ") AND NOT EXISTS ("
                "  SELECT 1 FROM batches b CROSS JOIN recipients r"
                "  ON r.batch_id = b.id AND r.edition_id = b.edition_id"
                "  WHERE b.edition_id = ? AND b.state = 'in_flight')",
                (timestamp(), edition_id, edition_id, edition_id),
            )

    def reset(self, edition_id: str) -> None:
        """Forget an edition's send, so a changed edition can go out under the same id.

        Only while nobody can have it: once a recipient is accepted, in flight or uncertain,
        forgetting would let the next run mail them again. Takes the send lock itself (unless
        this ledger holds it) so a running send can't be pulled out from under it.
        """
        if edition_id in self._locks:
            self._reset(edition_id)
            return
        with self.sending(edition_id):
            self._reset(edition_id)

    def _reset(self, edition_id: str) -> None:
        with self._write() as conn:
            blocking = dict(
                conn.execute(
                    "SELECT b.state, COUNT(*) FROM recipients r JOIN batches b "
                    "ON b.id = r.batch_id WHERE r.edition_id = ? "
                    "AND b.state IN ('accepted', 'in_flight', 'uncertain') GROUP BY b.state",
                    (edition_id,),
                ).fetchall()
            )
            if blocking:
                found = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in blocking.items())
                raise LedgerError(
                    f"edition {edition_id} can't be reset: {found} recipient(s) may already "
                    "have it; to send changes, make them a new edition"
                )
            conn.execute("DELETE FROM superseded WHERE edition_id = ?", (edition_id,))
            conn.execute("DELETE FROM recipients WHERE edition_id = ?", (edition_id,))
            conn.execute("DELETE FROM batches WHERE edition_id = ?", (edition_id,))
            conn.execute("DELETE FROM sends WHERE edition_id = ?", (edition_id,))
