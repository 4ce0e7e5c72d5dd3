"""Reading the local state an edition report is computed from; nothing here touches a network.

The ledger says who SendGrid accepted, the event store what SendGrid said since, the
suppression store who unsubscribed with newsflash's own one-click link, and the item files
which item each link came from. Each partner's organisation is the one the ledger froze with
the send; subscribers.csv is read only for a send frozen by an older newsflash. Every file is
opened read-only and none is created: a report must never change what it reports on.

The ledger's and the event store's public classes answer questions a send asks; a report
needs every accepted recipient and a few fields of every event, so it reads their documented
tables with read-only SQL. The event store rolls each recipient's events up as they arrive
(`recipient_facts`, state/event_rollup.py) and keeps each event's counted fields as columns
(`event_facts`): a report reads one row per recipient and only the clicks event by event;
reading all 500,000 events of a big edition took two seconds. A store no newer newsflash has
opened yet lacks the rollup (its events are read one by one and folded here) or even
`event_facts` (its events are read out of their JSON with `json_extract`), since a report
never writes. A rolled-up store is counted by SQLite (reports/sql_figures.py), from what
`read_known` and `accepted` read here; the rows read here otherwise go to `figures.compute`.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import cast

from newsflash.config import Config
from newsflash.errors import NewsflashError, SubscribersError
from newsflash.reports.clickable import item_maps
from newsflash.reports.figures import NOT_LISTED, EditionInput, EventRow, Outcome, Sent
from newsflash.state import event_rollup, ledgers
from newsflash.state.ledger import Ledger
from newsflash.state.ledger_db import has_organisation
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscriber_list import recipient_id

__all__ = [
    "LEDGERS",
    "Accepted",
    "Known",
    "NoSendError",
    "ReportError",
    "accepted",
    "cycles_left_alone",
    "edition_input",
    "organisations_of",
    "read_edition",
    "read_known",
    "read_only",
    "resolve_ledger",
    "sent_editions",
]

LEDGERS = tuple(ledgers.LEDGER_FILES)
_KINDS = event_rollup.REPORTED_KINDS
# Each row as figures.EventRow holds it; the recipient id of an event that carried none (a
# message sent before newsflash set custom_args) is computed from its address in Python.
_FACTS_SQL = """
SELECT event, {rid}, happened_at,
       CASE WHEN event = 'click' THEN url END,
       CASE WHEN event = 'click' THEN useragent END,
       CASE WHEN event = 'bounce' THEN bounce_type END,
       CASE WHEN event = 'bounce' THEN bounce_status END,
       CASE WHEN event = 'open' THEN machine_open ELSE 0 END
FROM event_facts WHERE edition_id = ? AND event IN ({kinds}) AND recipient_id {test} ''
"""
_as_row = partial(tuple.__new__, EventRow)  # 450k rows: NamedTuple's own __new__ costs ~1 s
_OUTCOMES_SQL = """
SELECT recipient_id, events, flags, delivered_at, bounce_type, bounce_status
FROM recipient_facts WHERE edition_id = ?
"""
_as_outcome = partial(tuple.__new__, Outcome)
_as_sent = partial(tuple.__new__, Sent)
_LEGACY_EVENTS_SQL = f"""
SELECT event, recipient_id, email, happened_at,
       CASE WHEN event = 'click' THEN json_extract(raw, '$.url') END,
       CASE WHEN event = 'click' THEN json_extract(raw, '$.useragent') END,
       CASE WHEN event = 'bounce' THEN json_extract(raw, '$.type') END,
       CASE WHEN event = 'bounce' THEN json_extract(raw, '$.status') END,
       CASE WHEN event = 'open' THEN json_extract(raw, '$.sg_machine_open') END
FROM events WHERE edition_id = ? AND event IN ({", ".join("?" for _ in _KINDS)})
"""
# In no particular order (the figures key recipients by id): sorting 100k rows by `seq` cost
# a fifth of the query.
# The organisation as the send froze it: NULL for a recipient frozen before the ledger kept it
# (and on a ledger this newsflash has not opened yet, which lacks the column).
_ACCEPTED_SQL = (
    "SELECT r.recipient_id, r.email, {organisation} FROM batches b CROSS JOIN recipients r "
    "ON r.batch_id = b.id AND r.edition_id = b.edition_id "
    "WHERE b.edition_id = ? AND b.state = 'accepted'"
)
#: (recipient id, address, organisation as frozen or None) of one accepted recipient.
Accepted = tuple[str, str, str | None]


class ReportError(NewsflashError):
    """A report cannot be made: no ledger, an edition never sent, an unreadable state file."""


class NoSendError(ReportError):
    """Nothing has been sent yet through the ledger asked for (or the edition was not sent)."""


def resolve_ledger(config: Config, name: str | None) -> tuple[str, Path]:
    """The ledger to read: the one named, else SendGrid's once it exists, else the outbox's."""
    chosen = name or ledgers.publication_ledger_name(config)
    path = ledgers.ledger_path(config, chosen)
    if not path.exists():
        raise NoSendError(
            f"no {chosen} ledger at {path}: nothing has been sent that way yet; send an "
            f"edition first (newsflash send), or pick another with --ledger "
            f"({', '.join(LEDGERS)})"
        )
    return chosen, path


def sent_editions(config: Config, ledger_name: str | None = None) -> list[str]:
    """Editions that reached at least one partner through that ledger, oldest first."""
    _, path = resolve_ledger(config, ledger_name)
    with Ledger(path) as ledger:
        return [s.edition_id for s in ledger.editions() if s.accepted > 0]


@dataclass(frozen=True)
class Known:
    """What a report reads besides the recipients and the events, whichever way it counts."""

    edition_id: str
    ledger_path: Path
    started_at: int | None  # when the send started (Unix seconds)
    link_items: dict[str, str]  # url -> item key
    item_titles: dict[str, str]  # item key -> title
    one_click: frozenset[str]  # recipient ids, from the suppressions
    notes: tuple[str, ...]


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a state file that cannot write it; an error reading it names it."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise ReportError(
            f"{path}: cannot open it read-only ({e}); check its permissions"
        ) from None
    try:
        yield conn
    except sqlite3.DatabaseError as e:
        raise ReportError(
            f"{path}: cannot read it ({e}); is it a newsflash state file? restore it from a "
            "backup or move it aside"
        ) from None
    finally:
        conn.close()


def _started_at(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return None


def accepted(path: Path, edition_id: str) -> list[Accepted]:
    """Every recipient SendGrid accepted the edition for, with the organisation the ledger
    froze for them (None where it kept none)."""
    with read_only(path) as conn:
        recorded = "r.organisation" if has_organisation(conn) else "NULL"
        return conn.execute(_ACCEPTED_SQL.format(organisation=recorded), (edition_id,)).fetchall()


def organisations_of(config: Config, rows: Sequence[Accepted]) -> tuple[list[str], list[str]]:
    """The organisation of each accepted recipient, in order, and the notes its reading left.

    As the ledger froze it at the send ('' for none), so a partner who left the list since
    still counts for theirs, and no partner list is read: reading 100k rows of it was a fifth
    of a big report. A recipient frozen by an older newsflash (None) gets theirs from
    subscribers.csv as it is now (NOT_LISTED when it no longer names them); a list that will
    not load is then a note (organisations unknown), not a failure: the report is about the
    send."""
    recorded = list(map(itemgetter(2), rows))
    if None not in recorded:
        return cast(list[str], recorded), []
    missing = [email.lower() for _, email, organisation in rows if organisation is None]
    from newsflash.reports.partners import organisations  # deferred: the list's reader

    try:
        listed, notes = organisations(config.subscribers_path, missing), []
    except SubscribersError as e:
        listed, notes = {}, [f"organisations unknown: {e}"]
    return [
        organisation if organisation is not None else listed.get(email.lower(), NOT_LISTED)
        for _, email, organisation in rows
    ], notes


def _recipients(config: Config, path: Path, edition_id: str) -> tuple[list[Sent], list[str]]:
    """Accepted recipients with their organisation."""
    rows = accepted(path, edition_id)
    found, notes = organisations_of(config, rows)
    ids = map(itemgetter(0), rows)
    emails = map(itemgetter(1), rows)
    return list(map(_as_sent, zip(ids, emails, found, strict=True))), notes


def _events(config: Config, edition_id: str) -> list[EventRow]:
    path = config.state_dir / "events.sqlite"
    if not path.exists():
        return []
    with read_only(path) as conn:
        facts = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_facts'"
        ).fetchone()
        return _fact_rows(conn, edition_id) if facts else _legacy_rows(conn, edition_id)


def _fact_rows(
    conn: sqlite3.Connection, edition_id: str, kinds: Sequence[str] = _KINDS
) -> list[EventRow]:
    """The events from `event_facts`, whose columns hold each field's type already."""
    args = (edition_id, *kinds)
    marks = ", ".join("?" for _ in kinds)
    with_id = _FACTS_SQL.format(rid="recipient_id", test="!=", kinds=marks)
    rows: list[EventRow] = list(map(_as_row, conn.execute(with_id, args)))
    without_id = _FACTS_SQL.format(rid="email", test="=", kinds=marks)
    for kind, email, *rest in conn.execute(without_id, args):
        rows.append(EventRow(kind, recipient_id(email), *rest))
    return rows


def _rolled_up(config: Config, edition_id: str) -> tuple[list[Outcome], list[EventRow]] | None:
    """Each recipient's outcome and the clicks, from a store whose rollup is complete; None
    for a store without one (no file, or not opened by this newsflash yet)."""
    path = config.state_dir / "events.sqlite"
    if not path.exists():
        return None
    with read_only(path) as conn:
        conn.execute("BEGIN")  # one snapshot: the clicks agree with the rollup
        if not event_rollup.is_filled(conn):
            return None
        outcomes = list(map(_as_outcome, conn.execute(_OUTCOMES_SQL, (edition_id,))))
        return outcomes, _fact_rows(conn, edition_id, ("click",))


def _legacy_rows(conn: sqlite3.Connection, edition_id: str) -> list[EventRow]:
    """The events of a store without `event_facts`, read out of their JSON."""
    cursor = conn.execute(_LEGACY_EVENTS_SQL, (edition_id, *_KINDS))
    return [
        EventRow(
            kind,
            rid or recipient_id(email),
            at if isinstance(at, int) else None,
            url if isinstance(url, str) else None,
            agent if isinstance(agent, str) else None,
            btype if isinstance(btype, str) else None,
            str(status) if status is not None else None,
            machine in (1, "true", "True"),
        )
        for kind, rid, email, at, url, agent, btype, status, machine in cursor
    ]


def _one_click(config: Config, edition_id: str) -> frozenset[str]:
    """Recipients who unsubscribed with this edition's link (lifted later or not)."""
    path = config.state_dir / "suppressions.sqlite"
    if not path.exists():
        return frozenset()
    store = SuppressionStore(path)
    try:
        rows = store.rows(include_lifted=True)
    finally:
        store.close()
    mark = f"edition={edition_id}"
    return frozenset(
        recipient_id(r.address)
        for r in rows
        if r.source == "one-click" and r.reason == "unsubscribe" and mark in r.detail.split("; ")
    )


@contextlib.contextmanager
def cycles_left_alone() -> Iterator[None]:
    """Python's cycle collector paused while a report reads its rows. Reading 100k recipients
    and outcomes allocates ~300k tuples, and each time the live objects grew by a quarter the
    collector walked every row read so far: 0.6 s of a 1.3 s read. Rows of text and numbers
    never form a cycle; any other garbage waits for the first collection after the read.

    Hold it over the figures too (`reports.edition_report` does): with the collector back on
    as soon as the read ended, the first computation of a big edition's figures took 1.02 s
    against 0.56 s with it paused (one process, CPU time), as the rows still alive were
    walked again; freed with the input once the figures are made, they are not walked."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_edition(config: Config, edition_id: str, ledger_name: str | None = None) -> EditionInput:
    """Everything `figures.compute` needs for one sent edition."""
    with cycles_left_alone():
        return edition_input(config, read_known(config, edition_id, ledger_name))


def read_known(config: Config, edition_id: str, ledger_name: str | None = None) -> Known:
    """What the ledger, the item files and the suppressions say of one sent edition;
    NoSendError when it reached nobody through that ledger."""
    name, path = resolve_ledger(config, ledger_name)
    with Ledger(path) as ledger:
        status = ledger.status(edition_id)
        manifest = ledger.manifest(edition_id) or {}
    if status.accepted == 0:
        raise NoSendError(
            f"edition {edition_id} has not reached anyone through the {name} ledger; "
            "sent editions: " + (", ".join(sent_editions(config, name)) or "none yet")
        )
    entries = manifest.get("items", [])
    keys = [str(e["path"]) for e in entries if isinstance(e, dict) and "path" in e]
    links, titles, notes = item_maps(config, manifest, keys)
    return Known(
        edition_id=edition_id,
        ledger_path=path,
        started_at=_started_at(status.started_at),
        link_items=links,
        item_titles=titles,
        one_click=_one_click(config, edition_id),
        notes=tuple(notes),
    )


def edition_input(config: Config, known: Known) -> EditionInput:
    """The rows `figures.compute` counts: every recipient, and every event or (from a
    rolled-up store) every recipient's outcome and the clicks."""
    edition_id = known.edition_id
    recipients, notes = _recipients(config, known.ledger_path, edition_id)
    rolled = _rolled_up(config, edition_id)
    outcomes, events = rolled if rolled else (None, _events(config, edition_id))
    return EditionInput(
        edition_id=edition_id,
        started_at=known.started_at,
        recipients=recipients,
        events=events,
        link_items=known.link_items,
        item_titles=known.item_titles,
        one_click_unsubscribes=known.one_click,
        notes=(*notes, *known.notes),
        outcomes=outcomes,
    )
