"""The send ledger: the one guard against sending a monthly edition twice to anyone.

A newsletter that reaches a partner twice looks careless, and one that silently skips them is
worse, so every recipient of an edition is always in exactly one known state, whatever moment a
send is killed at:

* *pending*: not handed to SendGrid yet;
* *in flight*: its batch was committed as in flight before the request went out;
* *accepted*: SendGrid answered 2xx (we keep its X-Message-Id to trace complaints);
* *failed*: SendGrid definitely refused (e.g. HTTP 400), so it was not sent and is retried;
* *uncertain*: the request may or may not have been delivered (no answer, a timeout, a crash).

State lives on batches, not on recipients: a recipient points at the batch it was last handed out
in (``NULL`` = pending), so marking 1000 recipients accepted is one row update, and a 100k list
costs a fraction of a second instead of minutes of per-row updates.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count, repeat
from pathlib import Path
from typing import Any

from newsflash.errors import LedgerError
from newsflash.files import LockHeld, lock_exclusive, unlock
from newsflash.state.sqlite import enable_wal

__all__ = ["Batch", "EditionStatus", "Ledger", "LedgerRecipient"]

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    edition_id    TEXT PRIMARY KEY,
    manifest_hash TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    total         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id         INTEGER PRIMARY KEY,
    edition_id TEXT NOT NULL REFERENCES sends(edition_id),
    state      TEXT NOT NULL
               CHECK (state IN ('in_flight', 'accepted', 'failed', 'uncertain', 'superseded')),
    message_id TEXT,
    reason     TEXT,
    attempts   INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_edition ON batches (edition_id, state);
CREATE TABLE IF NOT EXISTS recipients (
    edition_id   TEXT NOT NULL REFERENCES sends(edition_id),
    recipient_id TEXT NOT NULL,
    email        TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    batch_id     INTEGER REFERENCES batches(id),
    PRIMARY KEY (edition_id, recipient_id)
);
-- batch_id leads so that one index serves "next pending in file order" (batch_id IS NULL),
-- "members of batch N" and the foreign-key check when batches are deleted by reset().
CREATE INDEX IF NOT EXISTS recipients_by_batch ON recipients (batch_id, edition_id, seq);
-- Who was in a batch before it was superseded: the recipients row forgets it on retry.
CREATE TABLE IF NOT EXISTS superseded (
    batch_id     INTEGER NOT NULL REFERENCES batches(id),
    edition_id   TEXT NOT NULL,
    recipient_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS superseded_by_recipient ON superseded (edition_id, recipient_id);
CREATE TABLE IF NOT EXISTS approvals (
    edition_id    TEXT PRIMARY KEY,
    manifest_hash TEXT NOT NULL,
    approved_at   TEXT NOT NULL,
    approved_by   TEXT NOT NULL
);
"""

# Edition ids become lock file names, so nothing that could escape state/locks/.
_EDITION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_IN_FLIGHT_LOST = "no answer was recorded: the sending process died or timed out mid-request"


@dataclass(frozen=True)
class LedgerRecipient:
    recipient_id: str
    email: str


@dataclass(frozen=True)
class Batch:
    id: int
    edition_id: str
    recipients: tuple[LedgerRecipient, ...]


@dataclass(frozen=True)
class EditionStatus:
    edition_id: str
    manifest_hash: str | None
    started_at: str | None
    finished_at: str | None
    pending: int
    in_flight: int
    accepted: int
    failed: int
    uncertain: int
    total: int
    uncertain_recipients: tuple[str, ...]
    failed_recipients: tuple[tuple[str, str], ...]
    approval_hash: str | None

    @property
    def complete(self) -> bool:
        """An empty edition is not "complete": nobody got it, and saying so would hide that."""
        return self.total > 0 and self.accepted == self.total


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse_manifest(edition_id: str, manifest_json: str) -> dict[str, Any]:
    """A stored manifest as a dict (start_send refuses invalid JSON, so this is a safeguard)."""
    try:
        manifest = json.loads(manifest_json)
    except ValueError as exc:
        raise LedgerError(
            f"the ledger's manifest of edition {edition_id} is not valid JSON: {exc}"
        ) from exc
    return manifest if isinstance(manifest, dict) else {}


def _manifest_paths(edition_id: str, manifest_json: str) -> list[str]:
    """The item paths a stored manifest lists."""
    items = _parse_manifest(edition_id, manifest_json).get("items", [])
    return [
        item["path"]
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("path"), str)
    ]


class Ledger:
    """One SQLite file (WAL) shared by every ``newsflash`` process of a project.

    Lock files live in ``locks/`` next to the database (``state/locks/<edition>.lock`` for the
    usual ``state/ledger.sqlite``), so the lock and the data it guards can't get separated.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_dir = self.path.parent / "locks"
        self._locks: dict[str, int] = {}
        # Autocommit mode: every write opens its own BEGIN IMMEDIATE, so the moment a state
        # change becomes durable is explicit rather than left to the sqlite3 module's guesses.
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            enable_wal(conn)
            # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and
            # losing an "in flight" commit after its request left would invite a double send.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path} was written by a newer newsflash (ledger schema {version}, "
                    f"this one knows {_SCHEMA_VERSION}); upgrade newsflash before sending"
                )
            # One script, one transaction: executescript() would commit a BEGIN issued before it.
            conn.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {_SCHEMA_VERSION}; COMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        self._conn = conn

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        for edition_id in list(self._locks):
            self._release(edition_id)
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """IMMEDIATE takes the write lock up front, so two processes can't read the same
        pending rows and then both claim them."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if conn.in_transaction:  # the body may have rolled back a change that came to nothing
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot, so counts and lists in a status agree with each other."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # -- the send lock -------------------------------------------------------------------------

    @contextlib.contextmanager
    def sending(self, edition_id: str) -> Iterator[None]:
        """Hold the edition's send lock for the whole send.

        An flock, not a row in the database: the kernel drops it the instant its process dies,
        even by SIGKILL, so a crashed send never leaves a stale lock for someone to clear by hand,
        and "in flight" rows found by the next holder can only belong to a dead process.
        """
        if edition_id in self._locks:
            raise LedgerError(f"this process is already sending edition {edition_id}")
        fd = self._acquire(edition_id)
        self._locks[edition_id] = fd
        try:
            yield
        finally:
            self._release(edition_id)

    def _lock_path(self, edition_id: str) -> Path:
        if not _EDITION_ID.fullmatch(edition_id):
            raise LedgerError(
                f"edition id {edition_id!r} is not usable: use letters, digits, '.', '_' or '-' "
                "(e.g. 2022-02)"
            )
        return self._lock_dir / f"{edition_id}.lock"

    def _acquire(self, edition_id: str) -> int:
        path = self._lock_path(edition_id)
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        try:
            return lock_exclusive(path)
        except LockHeld as e:
            raise LedgerError(
                f"another send of edition {edition_id} is running (pid {e.holder}); "
                f"wait for it to finish, or check `newsflash status {edition_id}`"
            ) from None

    def _release(self, edition_id: str) -> None:
        fd = self._locks.pop(edition_id, None)
        if fd is not None:
            unlock(fd)  # the lock file stays; see files.unlock

    def _require_lock(self, edition_id: str, action: str) -> None:
        if edition_id not in self._locks:
            raise LedgerError(
                f"{action} for edition {edition_id} needs its send lock: "
                f"call it inside `with ledger.sending({edition_id!r}):`"
            )

    # -- sending -------------------------------------------------------------------------------

    def start_send(
        self,
        edition_id: str,
        manifest_hash: str,
        manifest_json: str,
        recipients: Sequence[LedgerRecipient],
        *,
        resend_uncertain: bool = False,
    ) -> EditionStatus:
        """Freeze the recipients on the first run; on later runs, pick up where the last stopped.

        The recipient list is frozen when the send first starts and later ``recipients`` are
        ignored: an edition is one mailing to one list, and letting it grow mid-send would make
        "who got it" unanswerable. A partner added after the send started gets the next edition.

        Batches still in flight belonged to a process that died or timed out (we hold the lock,
        so nobody else is sending): SendGrid may or may not have taken them, so they become
        uncertain and are resent only when the user asks (``resend_uncertain=True``), because a
        duplicate is the user's call. Failed batches were definitely refused, so their
        recipients are retried without asking.
        """
        self._require_lock(edition_id, "start_send")
        try:
            json.loads(manifest_json)
        except ValueError as exc:
            raise LedgerError(f"manifest of edition {edition_id} is not valid JSON: {exc}") from exc
        now = _now()
        with self._write() as conn:
            row = conn.execute(
                "SELECT manifest_hash FROM sends WHERE edition_id = ?", (edition_id,)
            ).fetchone()
            if row is None:
                self._freeze(conn, edition_id, manifest_hash, manifest_json, recipients, now)
            else:
                self._resume(conn, edition_id, row[0], manifest_hash, resend_uncertain, now)
        return self.status(edition_id)

    @staticmethod
    def _freeze(
        conn: sqlite3.Connection,
        edition_id: str,
        manifest_hash: str,
        manifest_json: str,
        recipients: Sequence[LedgerRecipient],
        now: str,
    ) -> None:
        # Two ids with one address would be a double send the ledger could not see.
        ids = [r.recipient_id for r in recipients]
        emails = [r.email.strip().lower() for r in recipients]
        if len(set(ids)) != len(ids) or len(set(emails)) != len(emails):
            dup_ids = [k for k, n in Counter(ids).items() if n > 1]
            dup_emails = [k for k, n in Counter(emails).items() if n > 1]
            parts = []
            if dup_ids:
                parts.append("duplicate recipient ids: " + ", ".join(sorted(dup_ids)))
            if dup_emails:
                parts.append("duplicate emails: " + ", ".join(sorted(dup_emails)))
            raise LedgerError(
                f"edition {edition_id} can't start: {'; '.join(parts)}; "
                "each person must appear once in the recipient list"
            )
        conn.execute(
            "INSERT INTO sends (edition_id, manifest_hash, manifest_json, started_at, total) "
            "VALUES (?, ?, ?, ?, ?)",
            (edition_id, manifest_hash, manifest_json, now, len(recipients)),
        )
        conn.executemany(
            "INSERT INTO recipients (edition_id, recipient_id, email, seq) VALUES (?, ?, ?, ?)",
            zip(repeat(edition_id), ids, (r.email for r in recipients), count(1)),
        )

    def _resume(
        self,
        conn: sqlite3.Connection,
        edition_id: str,
        frozen_hash: str,
        manifest_hash: str,
        resend_uncertain: bool,
        now: str,
    ) -> None:
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
        retry = ("failed", "uncertain") if resend_uncertain else ("failed",)
        marks = ", ".join("?" * len(retry))
        old = f"SELECT id FROM batches WHERE edition_id = ? AND state IN ({marks})"
        conn.execute(
            "INSERT INTO superseded (batch_id, edition_id, recipient_id) "
            f"SELECT batch_id, edition_id, recipient_id FROM recipients WHERE batch_id IN ({old})",
            (edition_id, *retry),
        )
        moved = conn.execute(
            f"UPDATE recipients SET batch_id = NULL WHERE batch_id IN ({old})",
            (edition_id, *retry),
        ).rowcount
        conn.execute(
            f"UPDATE batches SET state = 'superseded', updated_at = ? "
            f"WHERE edition_id = ? AND state IN ({marks})",
            (now, edition_id, *retry),
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
        now = _now()
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
            rows = conn.execute(
                "SELECT recipient_id, email FROM recipients WHERE batch_id = ? ORDER BY seq",
                (batch_id,),
            ).fetchall()
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
            recipients=tuple(LedgerRecipient(rid, email) for rid, email in rows),
        )

    def mark_accepted(self, batch_id: int, message_id: str | None) -> None:
        """Also settles an uncertain batch: a late 2xx is the best evidence there is."""
        self._transition(batch_id, "accepted", ("in_flight", "uncertain"), message_id, None)

    def mark_failed(self, batch_id: int, reason: str) -> None:
        """Only for a definite refusal; anything that might have been delivered is uncertain."""
        self._transition(batch_id, "failed", ("in_flight", "uncertain"), None, reason)

    def mark_uncertain(self, batch_id: int, reason: str) -> None:
        self._transition(batch_id, "uncertain", ("in_flight",), None, reason)

    def pending_recipients(self, edition_id: str) -> list[LedgerRecipient]:
        """Recipients not handed out yet, in list order (to settle those who left the list)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT recipient_id, email FROM recipients WHERE batch_id IS NULL "
                "AND edition_id = ? ORDER BY seq",
                (edition_id,),
            ).fetchall()
        return [LedgerRecipient(rid, email) for rid, email in rows]

    def resume_order(self, edition_id: str, *, resend_uncertain: bool) -> list[LedgerRecipient]:
        """Who the next run would send, in order: what start_send makes pending again (failed,
        and uncertain or in flight when asked) together with the pending, by list position."""
        states = ("failed", "uncertain", "in_flight") if resend_uncertain else ("failed",)
        marks = ", ".join("?" for _ in states)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT r.recipient_id, r.email FROM recipients r "
                "LEFT JOIN batches b ON b.id = r.batch_id "
                f"WHERE r.edition_id = ? AND (r.batch_id IS NULL OR b.state IN ({marks})) "
                "ORDER BY r.seq",
                (edition_id, *states),
            ).fetchall()
        return [LedgerRecipient(rid, email) for rid, email in rows]

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
        now = _now()
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
                (state, message_id, reason, _now(), batch_id, *allowed_from),
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
                (_now(), edition_id, edition_id, edition_id),
            )

    # -- reading -------------------------------------------------------------------------------

    def status(self, edition_id: str) -> EditionStatus:
        with self._read() as conn:
            return self._status(conn, edition_id)

    @staticmethod
    def _status(conn: sqlite3.Connection, edition_id: str) -> EditionStatus:
        send = conn.execute(
            "SELECT manifest_hash, started_at, finished_at FROM sends WHERE edition_id = ?",
            (edition_id,),
        ).fetchone()
        counts = {"pending": 0, "in_flight": 0, "accepted": 0, "failed": 0, "uncertain": 0}
        # Driven from batches (CROSS JOIN fixes the loop order) through the covering index
        # recipients_by_batch: ~10 ms for 100k recipients, where scanning recipients and
        # looking up each one's batch took ~0.4 s, and a send asks for its status several times.
        for state, n in conn.execute(
            "SELECT b.state, COUNT(*) FROM batches b CROSS JOIN recipients r "
            "ON r.batch_id = b.id AND r.edition_id = b.edition_id "
            "WHERE b.edition_id = ? GROUP BY b.state",
            (edition_id,),
        ):
            counts[state] = n
        counts["pending"] = conn.execute(
            "SELECT COUNT(*) FROM recipients WHERE batch_id IS NULL AND edition_id = ?",
            (edition_id,),
        ).fetchone()[0]
        counts.pop("superseded", None)  # superseded batches keep no recipients; be safe
        uncertain = tuple(
            email
            for (email,) in conn.execute(
                "SELECT r.email FROM batches b CROSS JOIN recipients r "
                "ON r.batch_id = b.id AND r.edition_id = b.edition_id "
                "WHERE b.edition_id = ? AND b.state = 'uncertain' ORDER BY r.seq",
                (edition_id,),
            )
        )
        failed = tuple(
            (email, reason or "")
            for email, reason in conn.execute(
                "SELECT r.email, b.reason FROM batches b CROSS JOIN recipients r "
                "ON r.batch_id = b.id AND r.edition_id = b.edition_id "
                "WHERE b.edition_id = ? AND b.state = 'failed' ORDER BY r.seq",
                (edition_id,),
            )
        )
        approval = conn.execute(
            "SELECT manifest_hash FROM approvals WHERE edition_id = ?", (edition_id,)
        ).fetchone()
        return EditionStatus(
            edition_id=edition_id,
            manifest_hash=send[0] if send else None,
            started_at=send[1] if send else None,
            finished_at=send[2] if send else None,
            pending=counts["pending"],
            in_flight=counts["in_flight"],
            accepted=counts["accepted"],
            failed=counts["failed"],
            uncertain=counts["uncertain"],
            total=sum(counts.values()),
            uncertain_recipients=uncertain,
            failed_recipients=failed,
            approval_hash=approval[0] if approval else None,
        )

    def editions(self) -> list[EditionStatus]:
        """Approved-but-unsent editions are listed too: they are what is about to go out."""
        with self._read() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT edition_id FROM sends UNION SELECT edition_id FROM approvals ORDER BY 1"
                )
            ]
            return [self._status(conn, edition_id) for edition_id in ids]

    @staticmethod
    def _accepted_any(conn: sqlite3.Connection, edition_id: str) -> bool:
        # Accepted batches are never superseded or emptied, so one row means one recipient.
        row = conn.execute(
            "SELECT 1 FROM batches WHERE edition_id = ? AND state = 'accepted' LIMIT 1",
            (edition_id,),
        ).fetchone()
        return row is not None

    def is_sent(self, edition_id: str) -> bool:
        """Sent means someone has it: from then on the edition can't be changed or reset."""
        with self._read() as conn:
            return self._accepted_any(conn, edition_id)

    def _manifest_json(self, edition_id: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT manifest_json FROM sends WHERE edition_id = ?", (edition_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def manifest(self, edition_id: str) -> dict[str, Any] | None:
        """The manifest frozen when the edition's send started (None: it has not started)."""
        text = self._manifest_json(edition_id)
        return None if text is None else _parse_manifest(edition_id, text)

    def frozen_item_keys(self, edition_id: str) -> frozenset[str] | None:
        """The items of the manifest frozen when the edition's send started (None: not started).

        A resume rebuilds the edition from these, so an item file that lands after the start
        cannot change, and so block, the edition half its partners already have.
        """
        text = self._manifest_json(edition_id)
        return None if text is None else frozenset(_manifest_paths(edition_id, text))

    def published_item_keys(self, exclude_edition: str | None = None) -> frozenset[str]:
        """Items that already reached someone, so a new edition doesn't repeat them.

        ``exclude_edition`` lets the edition being (re)built not count its own items.
        """
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.edition_id, s.manifest_json FROM sends s WHERE EXISTS ("
                "  SELECT 1 FROM batches b WHERE b.edition_id = s.edition_id"
                "  AND b.state = 'accepted')"
            ).fetchall()
        keys: set[str] = set()
        for edition_id, manifest_json in rows:
            if edition_id != exclude_edition:
                keys.update(_manifest_paths(edition_id, manifest_json))
        return frozenset(keys)

    # -- approvals -----------------------------------------------------------------------------

    def record_approval(self, edition_id: str, manifest_hash: str, approved_by: str) -> None:
        """A new approval replaces the old one: approving is of a hash, so the latest counts."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO approvals (edition_id, manifest_hash, approved_at, approved_by) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (edition_id) DO UPDATE SET "
                "manifest_hash = excluded.manifest_hash, approved_at = excluded.approved_at, "
                "approved_by = excluded.approved_by",
                (edition_id, manifest_hash, _now(), approved_by),
            )

    def approval(self, edition_id: str) -> tuple[str, str, str] | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT manifest_hash, approved_at, approved_by FROM approvals "
                "WHERE edition_id = ?",
                (edition_id,),
            ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    # -- reset ---------------------------------------------------------------------------------

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
