"""A rolled-up store's figures counted by SQLite (reports/sql_figures.py) must be exactly the
figures Python counts row by row (figures.compute) and the event-by-event reference
(tests/report_reference.py): random editions recorded through a real ledger and a real event
store, with recipients the ledger did not get through to, strangers in the events, events
keyed by address only, missing times, links and user agents, and a partner list of hostile
addresses and organisations (quotes, commas, mixed case, empty). The Python count stays for
what SQL is not given: a store not rolled up yet, or none.
"""

from __future__ import annotations

import csv
import dataclasses
import random
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
import report_reference
from test_report_rollup import LINKS, T0, TITLES, _as_older, _event, _stream

from newsflash import reports
from newsflash.config import Config
from newsflash.reports import ReportError, edition_report, sources
from newsflash.reports.figures import NO_ITEM, NO_ORGANISATION, compute
from newsflash.reports.rows import NOT_LISTED
from newsflash.reports.sources import Known, edition_input
from newsflash.reports.sql_figures import counted_in_sqlite
from newsflash.state.events import EventStore, parse_event
from newsflash.state.ledger import Ledger, LedgerRecipient
from newsflash.subscribers import recipient_id

ED = "2022-02"
# The rollup test's people (p0..p11; p10 and p11 never sent), the ledger holding some of them
# in another case, and hostile addresses a quoted CSV field carries.
HOSTILE = ['"last, first"@q.example', "O'Brien@Example.ORG", "x@", "nodomain", "a@b@c.example"]
PEOPLE = [f"p{i}@{'ab'[i % 2]}.example" for i in range(10)] + HOSTILE
ORGS = ["ACME", 'Bee "B" Ltd', "Comma, Inc.", "", "  spaced   out ", "acme", "(no organisation)"]


def _config(folder: Path) -> Config:
    class _Config:
        state_dir = folder / "state"
        subscribers_path = folder / "subscribers.csv"

    (folder / "state").mkdir(parents=True, exist_ok=True)
    return cast(Config, _Config())


def _ledger(config: Config, rng: random.Random) -> Path:
    """A send of PEOPLE (some in upper case) in batches of 3; one batch failed."""
    path = config.state_dir / "ledger.sqlite"
    people = [e.upper() if rng.random() < 0.2 else e for e in PEOPLE]
    with Ledger(path) as ledger, ledger.sending(ED):
        ledger.start_send(ED, "h", "{}", [LedgerRecipient(recipient_id(e), e) for e in people])
        failed = rng.randrange(0, 6)
        while (batch := ledger.next_batch(ED, 3)) is not None:
            if batch.id == failed:
                ledger.mark_failed(batch.id, "a refused request")
            else:
                ledger.mark_accepted(batch.id, f"m{batch.id}")
    return path


def _partner_list(config: Config, rng: random.Random) -> None:
    with config.subscribers_path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["email", "organisation", "status"])
        for email in rng.sample(PEOPLE, rng.randrange(0, len(PEOPLE))):
            out.writerow([email.swapcase() if rng.random() < 0.3 else email,
                          rng.choice(ORGS), "subscribed"])  # fmt: skip


def _known(config: Config, ledger: Path, rng: random.Random) -> Known:
    links = dict(list(LINKS.items())[: rng.randrange(0, 4)])
    return Known(
        edition_id=ED,
        ledger_path=ledger,
        started_at=rng.choice([T0, T0 - 600, None]),
        link_items=links,
        item_titles=TITLES,
        one_click=frozenset(recipient_id(e) for e in rng.sample([*PEOPLE, "x@y.z"], 3)),
        notes=("a note from the item files",) if rng.random() < 0.3 else (),
    )


def _sweep(rng: random.Random) -> list[dict[str, Any]]:
    """A gateway opening every link of one message within seconds of its delivery."""
    email = rng.choice(PEOPLE)
    at = T0 + rng.randrange(0, 3600)
    sweep = [{"event": "delivered", "email": email, "timestamp": at, "sg_event_id": f"s{at}"}]
    sweep += [
        {"event": "click", "email": email, "timestamp": at + n, "url": url,
         "useragent": "Mozilla/5.0", "sg_event_id": f"s{at}-{n}"}
        for n, url in enumerate([*LINKS, "https://elsewhere.example/"])
    ]  # fmt: skip
    rid = rng.choice([recipient_id(email), None])  # or keyed by its address
    return [dict(e, edition=ED, **({"recipient_id": rid} if rid else {})) for e in sweep]


def _edition(folder: Path, seed: int) -> tuple[Config, Known]:
    rng = random.Random(seed)
    config = _config(folder)
    ledger = _ledger(config, rng)
    _partner_list(config, rng)
    posted = _stream(rng)
    hostile = [dict(e, email=rng.choice(HOSTILE)) for e in posted if rng.random() < 0.2]
    hostile += _sweep(rng) if rng.random() < 0.5 else []
    store = EventStore.in_state(config.state_dir)
    for start in range(0, len(posted + hostile), 25):
        store.record([parse_event(e) for e in (posted + hostile)[start : start + 25]])
    store.close()
    return config, _known(config, ledger, rng)


def _reference(config: Config, known: Known) -> Any:
    """The event-by-event reference: every event of the edition as a row, no rollup."""
    data = edition_input(config, known)
    with sqlite3.connect(config.state_dir / "events.sqlite") as conn:
        rows = sources._fact_rows(conn, ED)
    return report_reference.compute(dataclasses.replace(data, events=rows, outcomes=None))


@pytest.mark.parametrize("seed", range(60))
def test_random_editions_counted_by_sqlite_give_the_figures_python_and_the_reference_give(
    tmp_path: Path, seed: int
) -> None:
    config, known = _edition(tmp_path, seed)
    counted = counted_in_sqlite(config, known)
    assert counted is not None
    assert counted == compute(edition_input(config, known))
    assert counted == _reference(config, known)


def test_the_random_editions_reach_what_sets_the_two_counts_apart(tmp_path: Path) -> None:
    """So the comparison above cannot pass on editions too tame to tell them apart."""
    reports = []
    for seed in range(60):
        config, known = _edition(tmp_path / str(seed), seed)
        counted = counted_in_sqlite(config, known)
        assert counted is not None
        reports.append(counted)
    assert any(r.unmatched_events for r in reports)  # strangers in the events
    assert any(r.delivery.sent < len(PEOPLE) for r in reports)  # a batch that failed
    assert {rule for r in reports for rule in r.scanners.by_rule} == {
        "user agent", "before delivery", "link sweep"
    }  # fmt: skip
    organisations = {g.name for r in reports for g in r.engagement.organisations if g.clickers}
    assert {NO_ORGANISATION, NOT_LISTED, "Comma, Inc.", 'Bee "B" Ltd'} <= organisations
    domains = {g.name for r in reports for g in r.engagement.domains}
    assert {"nodomain", "c.example", NO_ORGANISATION} <= domains
    assert any(r.delivery.bounced_soft and r.delivery.blocked for r in reports)
    assert any(r.trust.unsubscribes and r.engagement.machine_opens for r in reports)
    assert any(i.item_key == NO_ITEM and i.clicks for r in reports for i in r.engagement.items)


def test_a_store_not_rolled_up_yet_is_counted_in_python_with_the_same_figures(
    tmp_path: Path,
) -> None:
    config, known = _edition(tmp_path, 7)
    expected = counted_in_sqlite(config, known)
    _as_older(config.state_dir, 2)
    before = (config.state_dir / "events.sqlite").read_bytes()
    assert counted_in_sqlite(config, known) is None
    assert compute(edition_input(config, known)) == expected
    assert (config.state_dir / "events.sqlite").read_bytes() == before  # nothing written


def test_without_an_event_store_there_is_nothing_for_sqlite_to_count(tmp_path: Path) -> None:
    config, known = _edition(tmp_path, 3)
    (config.state_dir / "events.sqlite").unlink()
    assert counted_in_sqlite(config, known) is None
    report = compute(edition_input(config, known))
    assert report.events == 0 and "no events recorded" in " ".join(report.notes)


def test_an_edition_with_no_events_in_a_rolled_up_store_says_so_with_every_count_zero(
    tmp_path: Path,
) -> None:
    rng = random.Random(1)
    config = _config(tmp_path)
    ledger = _ledger(config, rng)
    _partner_list(config, rng)
    store = EventStore.in_state(config.state_dir)  # another edition's events only
    store.record([parse_event(dict(_event(rng, n), edition="2022-03")) for n in range(50)])
    store.close()
    known = _known(config, ledger, rng)
    counted = counted_in_sqlite(config, known)
    assert counted is not None and counted == compute(edition_input(config, known))
    assert counted.events == 0 and counted.unmatched_events == 0
    assert counted.delivery.not_yet_known == counted.delivery.sent > 0
    assert counted.engagement.clicks == 0 and counted.scanners.by_rule == {}
    assert any("no events recorded" in note for note in counted.notes)


def test_counting_in_sqlite_writes_no_state_file(tmp_path: Path) -> None:
    """Its temporary tables live in SQLite's temporary store: the databases stay byte for
    byte, and no journal appears (SQLite's shared-memory index, -shm, and an empty -wal, which
    any reader of a WAL database leaves, are not data)."""
    config, known = _edition(tmp_path, 5)
    state = config.state_dir

    def databases() -> dict[str, bytes]:
        files = [p for p in state.iterdir() if p.is_file() and not p.name.endswith("-shm")]
        return {p.name: p.read_bytes() for p in files if p.stat().st_size}

    before = databases()
    assert counted_in_sqlite(config, known) is not None
    assert databases() == before


def test_an_event_store_that_is_not_a_database_is_a_report_error_naming_it(
    tmp_path: Path,
) -> None:
    config, known = _edition(tmp_path, 2)
    events = config.state_dir / "events.sqlite"
    for extra in ("-wal", "-shm"):
        events.with_name(events.name + extra).unlink(missing_ok=True)
    events.write_bytes(b"not a database, a spreadsheet someone saved here" * 100)
    with pytest.raises(ReportError, match=r"events\.sqlite.*(restore|permissions)"):
        counted_in_sqlite(config, known)


def test_edition_report_counts_a_rolled_up_store_in_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report the CLI prints comes from the SQL count, not the Python one, when it can."""
    calls: list[str] = []
    monkeypatch.setattr(reports, "compute", lambda data: calls.append("python"))
    config, known = _edition(tmp_path, 9)
    monkeypatch.setattr(reports, "read_known", lambda *_: known)
    assert edition_report(config, ED) == counted_in_sqlite(config, known)
    assert calls == []
