"""The event store: what SendGrid told us about each message, once per event.

SendGrid often delivers one batch two or three times, so an event is keyed by its
`sg_event_id` and stored once; its raw JSON is kept whole, unknown fields and unknown event
types included, so a later report can read what today's code does not understand. A batch's
effects are applied *before* its events are recorded: if the process dies in between, the
redelivered batch is applied again (harmless) rather than swallowed as a duplicate; once an
event is recorded it is never applied again, so a suppression the secretariat lifted stays
lifted when SendGrid redelivers an old batch.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsflash.state import event_rollup
from newsflash.state.sqlite import WalDatabase

__all__ = ["VOUCHING", "Event", "EventStore", "parse_event"]

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS events (
    sg_event_id   TEXT PRIMARY KEY,
    event         TEXT NOT NULL,
    email         TEXT NOT NULL,
    happened_at   INTEGER,
    edition_id    TEXT NOT NULL,
    recipient_id  TEXT NOT NULL,
    sg_message_id TEXT NOT NULL,
    raw           TEXT NOT NULL,
    received_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_edition ON events (edition_id, event);
-- The few fields a report counts, as columns and stored by edition: reading them out of 500k
-- raw JSON rows scattered through `events` took seconds. Filled by `record`; a store written
-- before this table existed is filled from `raw` once, when it is first opened (_BACKFILL).
CREATE TABLE IF NOT EXISTS event_facts (
    edition_id    TEXT NOT NULL,
    event         TEXT NOT NULL,
    sg_event_id   TEXT NOT NULL,
    recipient_id  TEXT NOT NULL,
    email         TEXT NOT NULL,
    happened_at   INTEGER,
    url           TEXT,
    useragent     TEXT,
    bounce_type   TEXT,
    bounce_status TEXT,
    machine_open  INTEGER NOT NULL,
    PRIMARY KEY (edition_id, event, sg_event_id)
) WITHOUT ROWID;
-- Settling an uncertain batch asks for a few recipients' events of one edition.
CREATE INDEX IF NOT EXISTS events_by_recipient ON events (edition_id, recipient_id);
"""
    + event_rollup.SCHEMA
)
_BACKFILL = """
INSERT OR IGNORE INTO event_facts
SELECT edition_id, event, sg_event_id, recipient_id, email, happened_at,
       CASE WHEN json_type(raw, '$.url') = 'text' THEN json_extract(raw, '$.url') END,
       CASE WHEN json_type(raw, '$.useragent') = 'text' THEN json_extract(raw, '$.useragent') END,
       CASE WHEN json_type(raw, '$.type') = 'text' THEN json_extract(raw, '$.type') END,
       CAST(json_extract(raw, '$.status') AS TEXT),
       coalesce(json_extract(raw, '$.sg_machine_open') IN (1, 'true', 'True'), 0)
FROM events
"""
# 3: recipient_facts (event_rollup); an older newsflash would store events without it.
_VERSION = 3
_INT64 = (-(2**63), 2**63 - 1)
_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit
#: Events SendGrid emits only for a message it accepted: `processed` comes first for every one,
#: the others prove it as well when `processed` was lost or is late.
VOUCHING = ("processed", "delivered", "dropped", "bounce")
#: The category `newsflash send --to` adds: a test copy proves nothing about the partner's own.
_TEST_CATEGORY = "test"


@dataclass(frozen=True)
class Event:
    """One SendGrid event, with the fields newsflash acts on pulled out of `raw`."""

    sg_event_id: str
    event: str
    email: str
    happened_at: int | None
    edition_id: str
    recipient_id: str
    sg_message_id: str
    raw: dict[str, Any]

    def get(self, key: str) -> str:
        """A field of the raw event as text ('' when absent or not a plain value)."""
        value = self.raw.get(key)
        return str(value) if isinstance(value, str | int | float) else ""


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _is_time(stamp: object) -> bool:
    """A Unix time SQLite can store: a whole number within 64 bits (a larger one made the whole
    batch fail to store, and SendGrid would post it again and again)."""
    return (
        isinstance(stamp, int) and not isinstance(stamp, bool) and _INT64[0] <= stamp <= _INT64[1]
    )


def parse_event(obj: dict[str, Any]) -> Event:
    """Read an event tolerantly: a missing or odd field becomes '' or None, never an error.

    An event without an `sg_event_id` (SendGrid always sends one; a hand-made test may not)
    gets one derived from its content, so a redelivery is still recognised.
    """
    event_id = _text(obj, "sg_event_id")
    if not event_id:
        canonical = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
        event_id = "derived:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    stamp = obj.get("timestamp")
    return Event(
        sg_event_id=event_id,
        event=_text(obj, "event"),
        email=_text(obj, "email").strip().lower(),
        happened_at=stamp if _is_time(stamp) else None,
        edition_id=_text(obj, "edition"),
        recipient_id=_text(obj, "recipient_id"),
        sg_message_id=_text(obj, "sg_message_id"),
        raw=obj,
    )


def _schema_version(path: Path) -> int:
    """The version of a store already on disk (0: none yet), read before it is upgraded."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:
        return 0  # not a database: WalDatabase says so with the file's name
    finally:
        conn.close()


def _facts(e: Event) -> tuple[object, ...]:
    """The row of `event_facts` for one event: what a report counts, nothing more."""
    status = e.raw.get("status")
    return (
        e.edition_id,
        e.event,
        e.sg_event_id,
        e.recipient_id,
        e.email,
        e.happened_at,
        _text(e.raw, "url") or None,
        _text(e.raw, "useragent") or None,
        _text(e.raw, "type") or None,
        None if status is None or isinstance(status, dict | list) else str(status),
        int(e.raw.get("sg_machine_open") in (True, 1, "true", "True")),
    )


_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (sg_event_id, event, email, happened_at, edition_id, "
    "recipient_id, sg_message_id, raw, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _stored(e: Event, received: str) -> tuple[object, ...]:
    """The row of `events` for one event: its raw JSON whole, and when it arrived."""
    raw = json.dumps(e.raw, ensure_ascii=False, separators=(",", ":"))
    return (e.sg_event_id, e.event, e.email, e.happened_at, e.edition_id, e.recipient_id,
            e.sg_message_id, raw, received)  # fmt: skip


def _unseen(conn: sqlite3.Connection, events: Sequence[Event]) -> list[Event]:
    """The events not stored yet, each once (a batch may repeat one), in the batch's order."""
    unique: dict[str, Event] = {}
    for e in events:
        unique.setdefault(e.sg_event_id, e)
    ids = list(unique)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for (eid,) in conn.execute(
            f"SELECT sg_event_id FROM events WHERE sg_event_id IN ({marks})", chunk
        ):
            unique.pop(eid, None)
    return list(unique.values())


def _is_test(raw: str) -> bool:
    """Whether a stored event's categories (a list, or one string) include the test copy's."""
    try:
        category = json.loads(raw).get("category")
    except (ValueError, AttributeError):
        return False
    if isinstance(category, str):
        return category == _TEST_CATEGORY
    return isinstance(category, list) and _TEST_CATEGORY in category


class EventStore:
    """state/events.sqlite; safe for several threads and processes at once."""

    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None) -> None:
        before = _schema_version(path)
        self._db = WalDatabase(path, _SCHEMA, _VERSION)
        if 0 < before < 2:
            with self._db.write() as conn:
                conn.execute(_BACKFILL)
        self._fill_rollup()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.path = self._db.path

    def _fill_rollup(self) -> None:
        """Roll up a store written before the rollup, once. A writer that holds the lock past
        the busy timeout is another newsflash filling it right now (450k events take ~13 s):
        this one goes on without waiting longer; `fill` is done once by whoever gets there,
        and until then a report reads the events one by one."""
        with self._db.read() as conn:
            if event_rollup.is_filled(conn):
                return
        try:
            with self._db.write() as conn:
                event_rollup.fill(conn)
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise

    @classmethod
    def in_state(cls, state_dir: Path, clock: Callable[[], datetime] | None = None) -> EventStore:
        """The workspace's store: ``state/events.sqlite``."""
        return cls(state_dir / "events.sqlite", clock)

    def close(self) -> None:
        self._db.close()

    def fresh(self, events: Sequence[Event]) -> list[Event]:
        """The events of a batch not stored before, each once (a batch may repeat one).

        A read, no write: the caller applies their effects first and records them after, so
        a crash in between makes SendGrid redeliver (no 2xx was sent) and the batch is applied
        again, harmlessly, since a suppression already active is not added twice.
        """
        with self._db.read() as conn:
            return _unseen(conn, events)

    def record(self, events: Sequence[Event]) -> int:
        """Store the events (once each, whoever records them first); how many were new."""
        if not events:
            return 0
        received = self._clock().astimezone(UTC).isoformat(timespec="seconds")
        with self._db.write() as conn:
            # Only an event new to the store may reach the facts and the rollup: a redelivery
            # must change nothing. Asked inside the write lock, so no other writer interleaves.
            added = _unseen(conn, events)
            conn.executemany(_INSERT_EVENT, [_stored(e, received) for e in added])
            facts = [_facts(e) for e in added]
            conn.executemany(
                "INSERT OR IGNORE INTO event_facts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", facts
            )
            event_rollup.fold_in(conn, facts)
            return len(added)

    def vouched(self, edition_id: str, recipients: Mapping[str, str]) -> dict[str, str | None]:
        """Which of `recipients` (id -> address) a VOUCHING event proves SendGrid accepted the
        edition for, with the X-Message-Id of that request (the start of `sg_message_id`).

        The event must name the same address as the ledger (a recipient id is a hash of one,
        but a forged or stray id must not settle someone else), and a test copy's events
        (category "test") do not count.
        """
        ids = list(recipients)
        marks = ", ".join("?" for _ in VOUCHING)
        found: dict[str, str | None] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows = conn.execute(
                    "SELECT recipient_id, email, sg_message_id, raw FROM events "
                    f"WHERE edition_id = ? AND recipient_id IN ({', '.join('?' * len(chunk))}) "
                    f"AND event IN ({marks}) ORDER BY happened_at",
                    (edition_id, *chunk, *VOUCHING),
                ).fetchall()
                for rid, address, sg_message_id, raw in rows:
                    if address != recipients[rid].strip().lower() or _is_test(raw):
                        continue
                    message_id = sg_message_id.split(".", 1)[0] or None
                    if found.get(rid) is None:
                        found[rid] = message_id
        return found

    def counts(self, edition_id: str | None = None) -> dict[str, int]:
        """Events per type (all editions, or one), e.g. how many were deferred or blocked."""
        where, args = ("WHERE edition_id = ?", (edition_id,)) if edition_id else ("", ())
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT event, COUNT(*) FROM events {where} GROUP BY event ORDER BY event", args
            ).fetchall()
        return {str(kind): int(n) for kind, n in rows}

    def raw(self, sg_event_id: str) -> dict[str, Any] | None:
        """The event exactly as stored (its JSON), or None."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT raw FROM events WHERE sg_event_id = ?", (sg_event_id,)
            ).fetchone()
        if row is None:
            return None
        value = json.loads(row[0])
        return value if isinstance(value, dict) else None
