"""The per-recipient rollup the event store keeps for the report (state/event_rollup.py) must
give every figure exactly as the old event-by-event computation did (tests/report_reference.py):
random event streams, delivered shuffled, in batches, with redeliveries, events without a
recipient id, several editions and hostile fields, are recorded through EventStore.record and
reported both ways. A store written before the rollup existed is rolled up once when first
opened, and reported the same before that (a report never writes).
"""

from __future__ import annotations

import contextlib
import gc
import random
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
import report_reference

from newsflash.config import Config
from newsflash.reports import sources
from newsflash.reports.figures import compute
from newsflash.reports.rows import EditionInput, EditionReport, EventRow, Outcome, Sent
from newsflash.state import event_rollup
from newsflash.state.events import EventStore, parse_event
from newsflash.subscribers import recipient_id

ED = "2022-02"
T0 = 1_780_000_000
LINKS = {"https://a.example/": "a.md", "https://b.example/": "b.md", "https://c.example/": "c.md"}
TITLES = {"a.md": "A", "b.md": "B", "c.md": "C"}
KINDS = ["processed", "delivered", "delivered", "deferred", "bounce", "bounce", "dropped",
         "open", "open", "click", "click", "click", "spamreport", "unsubscribe",
         "group_unsubscribe", "group_resubscribe", "something new"]  # fmt: skip
PEOPLE = [f"p{i}@{'ab'[i % 2]}.example" for i in range(12)]  # the last two were never sent


def _config(state: Path) -> Config:
    class _Config:
        state_dir = state

    return cast(Config, _Config())


def _timestamp(rng: random.Random) -> object:
    """Mostly sensible times, some shared by several events, some missing or not a number."""
    return rng.choice(
        [T0 + rng.randrange(-900, 80 * 3600), T0 + rng.randrange(0, 90), T0 + 30, T0 + 30,
         None, 0, "1780000000", True, T0 + 3600.5]
    )  # fmt: skip


def _event(rng: random.Random, n: int) -> dict[str, Any]:
    email = rng.choice(PEOPLE)
    kind = rng.choice(KINDS)
    obj: dict[str, Any] = {
        "event": kind,
        "email": email.upper() if rng.random() < 0.2 else email,
        "edition": rng.choice([ED, ED, ED, "2022-03", ""]),
        "sg_message_id": "m.filter",
    }
    if rng.random() < 0.9:
        obj["sg_event_id"] = f"e{n:03d}"  # else derived from the content
    if rng.random() < 0.7:  # else an older message's event, keyed by its address
        obj["recipient_id"] = rng.choice([recipient_id(email)] * 9 + [5, recipient_id("x@y.z")])
    stamp = _timestamp(rng)
    if stamp is not None:
        obj["timestamp"] = stamp
    if kind == "click":
        obj["url"] = rng.choice([*LINKS, "https://elsewhere.example/", ["not", "text"]])
        obj["useragent"] = rng.choice(["Mozilla/5.0", "Mimecast URL Protect", 42, None])
    if kind == "bounce":
        obj["type"] = rng.choice(["bounce", "blocked", "Blocked", None, 5])
        obj["status"] = rng.choice(["5.1.1", "4.2.2", 550, 421, None, "4"])
    if kind == "open" and rng.random() < 0.8:
        obj["sg_machine_open"] = rng.choice([True, False, 1, 0, "true", "True", "yes", None])
    return obj


def _stream(rng: random.Random) -> list[dict[str, Any]]:
    """Events as SendGrid might post them: shuffled, some posted two or three times."""
    events = [_event(rng, n) for n in range(rng.randrange(0, 160))]
    again = [e for e in events if rng.random() < 0.25]
    posted = events + again + [e for e in again if rng.random() < 0.5]
    rng.shuffle(posted)
    return posted


def _record(state: Path, posted: list[dict[str, Any]], rng: random.Random) -> None:
    store = EventStore.in_state(state)
    start = 0
    while start < len(posted):
        size = rng.randrange(1, 40)
        store.record([parse_event(e) for e in posted[start : start + size]])
        start += size
    store.close()


def _input(rng: random.Random, events: list[EventRow], outcomes: list[Outcome] | None) -> Any:
    people = [Sent(recipient_id(e), e, rng.choice(["Org A", "Org B", ""])) for e in PEOPLE[:10]]
    one_click = frozenset(recipient_id(e) for e in rng.sample(PEOPLE, 3))
    started = rng.choice([T0, T0 - 600, None])
    return EditionInput(ED, started, people, events, LINKS, TITLES, one_click, (), outcomes)


def _reports(state: Path, seed: int) -> tuple[EditionReport, EditionReport, EditionReport]:
    """The old computation, the rollup's and the fold of every event, on one store."""
    with sqlite3.connect(state / "events.sqlite") as conn:
        rows = sources._fact_rows(conn, ED)
    rolled = sources._rolled_up(_config(state), ED)
    assert rolled is not None
    outcomes, clicks = rolled
    assert {c.kind for c in clicks} <= {"click"}
    return (
        report_reference.compute(_input(random.Random(seed), rows, None)),
        compute(_input(random.Random(seed), clicks, outcomes)),
        compute(_input(random.Random(seed), rows, None)),
    )


def _rollup(state: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(state / "events.sqlite") as conn:
        return conn.execute("SELECT * FROM recipient_facts ORDER BY 1, 2").fetchall()


@pytest.mark.parametrize("seed", range(40))
def test_random_event_streams_report_the_same_through_the_rollup_as_event_by_event(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    _record(tmp_path, _stream(rng), rng)
    reference, rolled, folded = _reports(tmp_path, seed)
    assert rolled == reference
    assert folded == reference
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:  # a store without event_facts
        legacy = sources._legacy_rows(conn, ED)
    assert compute(_input(random.Random(seed), legacy, None)) == report_reference.compute(
        _input(random.Random(seed), legacy, None)
    )


@pytest.mark.parametrize("seed", range(10))
def test_the_rollup_is_the_same_whatever_order_and_batches_the_events_arrive_in(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    posted = _stream(rng)
    _record(tmp_path / "one", posted, rng)
    rng.shuffle(posted)
    _record(tmp_path / "two", list(reversed(posted)), rng)
    assert _rollup(tmp_path / "one") == _rollup(tmp_path / "two")


def test_a_redelivered_batch_changes_nothing_in_the_rollup(tmp_path: Path) -> None:
    rng = random.Random(3)
    posted = [parse_event(_event(rng, n)) for n in range(120)]
    distinct = {e.sg_event_id: e for e in posted}  # an event without an id may repeat another
    store = EventStore.in_state(tmp_path)
    first = store.record(posted)
    before = _rollup(tmp_path)
    rng.shuffle(posted)
    again = store.record(posted + posted[:10])
    store.close()
    assert first == len(distinct) and again == 0
    assert _rollup(tmp_path) == before
    counted = [e for e in distinct.values() if e.event in event_rollup.REPORTED_KINDS]
    assert sum(int(cast(int, row[2])) for row in before) == len(counted)


def _as_older(state: Path, version: int) -> None:
    """Make a store look as an older newsflash left it: no rollup (and, for 1, no facts)."""
    with sqlite3.connect(state / "events.sqlite") as conn:
        conn.execute("DROP TABLE recipient_facts")
        conn.execute("DROP TABLE filled")
        if version < 2:
            conn.execute("DROP TABLE event_facts")
        conn.execute(f"PRAGMA user_version = {version}")


@pytest.mark.parametrize("version", [2, 1], ids=["with event_facts", "raw events only"])
def test_a_store_written_before_the_rollup_reports_the_same_and_is_rolled_up_once_on_open(
    tmp_path: Path, version: int
) -> None:
    rng = random.Random(11)
    _record(tmp_path, [_event(rng, n) for n in range(300)], rng)
    expected, rollup = _reports(tmp_path, 11)[0], _rollup(tmp_path)
    _as_older(tmp_path, version)
    before = (tmp_path / "events.sqlite").read_bytes()
    assert sources._rolled_up(_config(tmp_path), ED) is None  # the report reads event by event
    events = sources._events(_config(tmp_path), ED)
    if version == 2:
        assert compute(_input(random.Random(11), events, None)) == expected
    assert (tmp_path / "events.sqlite").read_bytes() == before  # and writes nothing
    EventStore.in_state(tmp_path).close()  # the next newsflash to open it rolls it up
    assert _rollup(tmp_path) == rollup
    EventStore.in_state(tmp_path).close()  # and not again
    assert _rollup(tmp_path) == rollup
    assert _reports(tmp_path, 11)[1] == expected


def test_filling_the_rollup_twice_counts_each_event_once(tmp_path: Path) -> None:
    """Two processes opening an old store at once both find it unfilled; the second to get
    the write lock must find it filled and leave it alone."""
    rng = random.Random(5)
    _record(tmp_path, [_event(rng, n) for n in range(200)], rng)
    rollup = _rollup(tmp_path)
    _as_older(tmp_path, 2)
    EventStore.in_state(tmp_path).close()
    with sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None) as conn:
        conn.execute("BEGIN IMMEDIATE")
        event_rollup.fill(conn)
        event_rollup.fill(conn)
        conn.execute("COMMIT")
    assert _rollup(tmp_path) == rollup


@pytest.mark.parametrize("ids", [("b1", "b2"), ("b2", "b1")])
def test_of_bounces_at_the_same_time_the_one_keyed_by_address_says_the_most_as_before(
    tmp_path: Path, ids: tuple[str, str]
) -> None:
    """The old read listed events keyed by address after those keyed by id (each by event id)
    and took the last bounce of equal time; the rollup keeps that order, so no figure moves."""
    email = PEOPLE[0]
    by_address, by_id = ids
    posted = [
        {"event": "bounce", "email": email, "edition": ED, "sg_event_id": by_id,
         "recipient_id": recipient_id(email), "timestamp": T0, "type": "blocked"},
        {"event": "bounce", "email": email, "edition": ED, "sg_event_id": by_address,
         "timestamp": T0, "type": "bounce", "status": "4.2.2"},
        {"event": "bounce", "email": PEOPLE[1], "edition": ED, "sg_event_id": by_id + "x",
         "recipient_id": recipient_id(PEOPLE[1]), "type": "blocked"},  # no time: as 0
        {"event": "bounce", "email": PEOPLE[1], "edition": ED, "sg_event_id": by_address + "x",
         "timestamp": 0, "type": "bounce", "status": "5.1.1"},
    ]  # fmt: skip
    _record(tmp_path, posted, random.Random(0))
    reference, rolled, folded = _reports(tmp_path, 0)
    assert (reference.delivery.bounced_soft, reference.delivery.bounced_hard) == (1, 1)
    assert rolled == reference and folded == reference


@pytest.mark.parametrize("fails", [False, True], ids=["read", "read that fails"])
def test_a_report_leaves_the_cycle_collector_as_it_found_it(fails: bool) -> None:
    assert gc.isenabled()
    with contextlib.suppress(sources.ReportError), sources.cycles_left_alone():
        assert not gc.isenabled()
        if fails:
            raise sources.ReportError("an unreadable state file")
    assert gc.isenabled()
    gc.disable()
    try:
        with sources.cycles_left_alone():
            pass
        assert not gc.isenabled()  # a caller that paused it keeps it paused
    finally:
        gc.enable()


def test_a_store_another_process_is_rolling_up_opens_without_waiting_for_it(
    tmp_path: Path,
) -> None:
    """The other process holds the write lock while it fills the rollup (seconds on a big
    store); this one must open without an error, and the rollup is still filled once."""
    rng = random.Random(7)
    _record(tmp_path, [_event(rng, n) for n in range(100)], rng)
    rollup = _rollup(tmp_path)
    store = EventStore.in_state(tmp_path)
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:  # as if written before it
        conn.execute("DELETE FROM filled")
        conn.execute("DELETE FROM recipient_facts")
    other = sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None)
    store._db.connection().execute("PRAGMA busy_timeout = 0")  # not 10 s, in a test
    other.execute("BEGIN IMMEDIATE")
    store._fill_rollup()  # no error: it leaves the fill to the lock's holder
    other.execute("ROLLBACK")
    other.close()
    assert sources._rolled_up(_config(tmp_path), ED) is None  # reports read event by event
    store._fill_rollup()
    store.close()
    assert _rollup(tmp_path) == rollup
