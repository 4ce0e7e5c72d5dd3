"""Each recipient's outcome per edition, gathered as events arrive, so a report reads one row
per recipient instead of every event.

A report of 100k recipients and 500k events spent two seconds reading and counting the
events one by one (`event_facts`); SQLite alone needed ~1 s just to hand them over. What the
figures need of a recipient is a handful of first times and flags (delivered when, deferred,
dropped, the latest bounce, opened, opened by a person, spam report, unsubscribe: one bit
each in `flags`) and how many events it had, so `EventStore.record` folds each new event into
`recipient_facts` in the same transaction that stores it. Every column is merged with OR, MIN
or MAX (the latest bounce by a total order), so the order events arrive in does not matter; a
duplicate never reaches this table because only events new to the store are folded in. Clicks
are not rolled up: the report needs each one (per link, per hour, the scanner rules) and
reads them from `event_facts`.

A store written before this table existed is filled from `event_facts` once (`fill`), in one
transaction, and marked filled; a report uses the table only once that mark is there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from newsflash.subscriber_list import recipient_id

__all__ = [
    "BOUNCED",
    "DEFERRED",
    "DELIVERED",
    "DROPPED",
    "HUMAN_OPENED",
    "OPENED",
    "REPORTED_KINDS",
    "SCHEMA",
    "SPAM",
    "UNSUBSCRIBED",
    "fill",
    "flags_of",
    "fold_in",
    "is_filled",
]

#: The event types a report counts (every other type is stored but not rolled up).
REPORTED_KINDS = ("delivered", "deferred", "bounce", "dropped", "open", "click", "spamreport",
                  "unsubscribe", "group_unsubscribe")  # fmt: skip
# The bits of `flags`: what SendGrid reported of the recipient at least once. One integer, not
# eight columns: a report reads 100k rows, and each column handed to Python costs.
DELIVERED, DEFERRED, DROPPED, BOUNCED = 1, 2, 4, 8
OPENED, HUMAN_OPENED, SPAM, UNSUBSCRIBED = 16, 32, 64, 128  # human: not sg_machine_open
_KIND_FLAGS = {"delivered": DELIVERED, "deferred": DEFERRED, "dropped": DROPPED,
               "bounce": BOUNCED, "spamreport": SPAM, "unsubscribe": UNSUBSCRIBED,
               "group_unsubscribe": UNSUBSCRIBED}  # fmt: skip
_TABLE = "recipient_facts"
_FILL_CHUNK = 20_000  # event_facts rows held at once while filling

SCHEMA = f"""
-- One row per recipient and edition (an event without a recipient id counts under the id of
-- its address, as a ledger keys it). The latest bounce is the greatest (bounce_at, by_address,
-- bounce_event): its time (0 when it had none), then one keyed by address after one keyed by
-- id, then its sg_event_id; NULL bounce_at: no bounce.
CREATE TABLE IF NOT EXISTS {_TABLE} (
    edition_id    TEXT NOT NULL,
    recipient_id  TEXT NOT NULL,
    events        INTEGER NOT NULL,
    flags         INTEGER NOT NULL,
    delivered_at  INTEGER,
    bounce_at     INTEGER,
    by_address    INTEGER,
    bounce_event  TEXT,
    bounce_type   TEXT,
    bounce_status TEXT,
    PRIMARY KEY (edition_id, recipient_id)
) WITHOUT ROWID;
-- Which derived tables are complete: a rollup filled from the events stored before it.
CREATE TABLE IF NOT EXISTS filled (what TEXT PRIMARY KEY) WITHOUT ROWID;
"""
_NEWER_BOUNCE = (
    "excluded.bounce_at IS NOT NULL AND (bounce_at IS NULL OR "
    "(excluded.bounce_at, excluded.by_address, excluded.bounce_event) > "
    "(bounce_at, by_address, bounce_event))"
)
_BOUNCE_COLUMNS = ("bounce_at", "by_address", "bounce_event", "bounce_type", "bounce_status")
_NO_BOUNCE = (None,) * len(_BOUNCE_COLUMNS)
_UPSERT = (
    f"INSERT INTO {_TABLE} VALUES ({', '.join('?' * 10)}) "
    "ON CONFLICT (edition_id, recipient_id) DO UPDATE SET events = events + excluded.events, "
    "flags = flags | excluded.flags, "
    "delivered_at = min(coalesce(delivered_at, excluded.delivered_at), "
    "coalesce(excluded.delivered_at, delivered_at)), "
    + ", ".join(
        f"{c} = CASE WHEN {_NEWER_BOUNCE} THEN excluded.{c} ELSE {c} END" for c in _BOUNCE_COLUMNS
    )
)
#: event_facts' columns, in the order `_outcome` reads them.
_FACT_COLUMNS = (
    "edition_id, event, sg_event_id, recipient_id, email, happened_at, url, useragent, "
    "bounce_type, bounce_status, machine_open"
)


def flags_of(kind: object, machine_open: object) -> int:
    """The bits one event sets (an open by a person also HUMAN_OPENED); shared with the
    report's fold of events given one by one, so both read an event alike."""
    if kind == "open":
        return OPENED if machine_open else OPENED | HUMAN_OPENED
    return _KIND_FLAGS.get(str(kind), 0)


def _outcome(facts: Sequence[object]) -> tuple[object, ...]:
    """One event (a row of event_facts) as the recipient_facts row it would be alone."""
    edition, kind, event_id, rid, email, at, _url, _agent, btype, status, machine = facts
    who = rid or recipient_id(str(email))
    if kind == "bounce":
        return (edition, who, 1, BOUNCED, None, at or 0, int(not rid), event_id, btype, status)
    delivered_at = at if kind == "delivered" else None
    return (edition, who, 1, flags_of(kind, machine), delivered_at, *_NO_BOUNCE)


def fold_in(conn: sqlite3.Connection, facts: Iterable[Sequence[object]]) -> None:
    """Merge events (rows of event_facts, each new to the store) into their recipients' rows;
    the caller's transaction makes it one write with the events themselves."""
    conn.executemany(_UPSERT, (_outcome(f) for f in facts if f[1] in REPORTED_KINDS))


def is_filled(conn: sqlite3.Connection) -> bool:
    """Whether the rollup holds every stored event (False on a store that predates it)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'filled'"
    ).fetchone()
    return bool(exists) and bool(
        conn.execute("SELECT 1 FROM filled WHERE what = ?", (_TABLE,)).fetchone()
    )


def fill(conn: sqlite3.Connection) -> None:
    """Build the rollup from event_facts, once: inside the caller's write transaction, so a
    second process opening the same old store at once waits and then finds it filled."""
    if is_filled(conn):
        return
    conn.execute(f"DELETE FROM {_TABLE}")
    marks = ", ".join("?" * len(REPORTED_KINDS))
    cursor = conn.execute(
        f"SELECT {_FACT_COLUMNS} FROM event_facts WHERE event IN ({marks})", REPORTED_KINDS
    )
    while rows := cursor.fetchmany(_FILL_CHUNK):
        fold_in(conn, rows)
    conn.execute("INSERT INTO filled VALUES (?)", (_TABLE,))
