"""What the report reads fast must read the same: the event store's `event_facts` (filled on
record, or once from the raw JSON of a store written before it existed) against the JSON
itself, and the partner list's organisations read without full validation against the
validating loader, for the lists spreadsheets produce.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from newsflash.reports import sources
from newsflash.reports.partners import organisations
from newsflash.state.events import EventStore, parse_event
from newsflash.subscribers import load_subscribers, recipient_id

ED = "2022-02"


def _events() -> list[dict[str, Any]]:
    a, b = "anna@example.org", "Bert@Example.org"
    return [
        {"event": "delivered", "email": a, "timestamp": 100, "sg_event_id": "1",
         "edition": ED, "recipient_id": recipient_id(a)},
        {"event": "click", "email": a, "timestamp": 200, "sg_event_id": "2", "edition": ED,
         "recipient_id": recipient_id(a), "url": "https://example.org/x", "useragent": "UA"},
        {"event": "bounce", "email": b, "timestamp": 300, "sg_event_id": "3", "edition": ED,
         "type": "blocked", "status": "5.7.1"},  # no recipient_id: from the address
        {"event": "bounce", "email": b, "timestamp": 301, "sg_event_id": "4", "edition": ED,
         "type": "bounce", "status": 550},  # a number where SendGrid sends text
        {"event": "open", "email": a, "timestamp": 400, "sg_event_id": "5", "edition": ED,
         "recipient_id": recipient_id(a), "sg_machine_open": True},
        {"event": "open", "email": b, "sg_event_id": "6", "edition": ED},  # no timestamp
        {"event": "click", "email": b, "timestamp": 500, "sg_event_id": "7", "edition": ED,
         "url": ["not", "text"]},
        {"event": "delivered", "email": a, "timestamp": 100, "sg_event_id": "8",
         "edition": "2022-03", "recipient_id": recipient_id(a)},  # another edition
    ]  # fmt: skip


def _legacy(state: Path) -> list[sources.EventRow]:
    with sqlite3.connect(state / "events.sqlite") as conn:
        return sources._legacy_rows(conn, ED)


def _facts(state: Path) -> list[sources.EventRow]:
    with sqlite3.connect(state / "events.sqlite") as conn:
        return sources._fact_rows(conn, ED)


def _key(row: Any) -> tuple[str, ...]:
    """A row as text; a URL that is JSON but not a string (which json_extract hands back as
    its JSON text, so the old read took '["not","text"]' for a link) counts as no URL."""
    url = None if str(row[3]).startswith("[") else row[3]
    return (*(str(v) for v in (*row[:3], url, *row[4:7])), str(bool(row[7])))


def test_the_event_facts_read_the_same_as_the_raw_json(tmp_path: Path) -> None:
    store = EventStore.in_state(tmp_path)
    store.record([parse_event(e) for e in _events()])
    store.close()
    facts, legacy = _facts(tmp_path), _legacy(tmp_path)
    assert len(facts) == 7
    assert sorted(map(_key, facts)) == sorted(map(_key, legacy))
    bounce = next(r for r in facts if r.kind == "bounce" and r.bounce_type == "bounce")
    assert bounce.status == "550" and bounce.recipient_id == recipient_id("bert@example.org")
    assert next(r for r in facts if r.kind == "click" and r.at == 500).url is None


def test_a_store_written_before_event_facts_is_filled_once_when_first_opened(
    tmp_path: Path,
) -> None:
    store = EventStore.in_state(tmp_path)
    store.record([parse_event(e) for e in _events()])
    store.close()
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:  # as the first version left it
        conn.execute("DROP TABLE event_facts")
        conn.execute("PRAGMA user_version = 1")
    with sqlite3.connect(f"{(tmp_path / 'events.sqlite').as_uri()}?mode=ro", uri=True) as conn:
        assert (
            conn.execute("SELECT name FROM sqlite_master WHERE name = 'event_facts'").fetchall()
            == []
        )
    legacy = _legacy(tmp_path)
    EventStore.in_state(tmp_path).close()  # the next newsflash to open it fills the table
    assert sorted(map(_key, _facts(tmp_path))) == sorted(map(_key, legacy))
    EventStore.in_state(tmp_path).close()  # and not again
    assert len(_facts(tmp_path)) == 7


def test_a_report_of_a_store_without_event_facts_reads_the_json_and_writes_nothing(
    tmp_path: Path,
) -> None:
    store = EventStore.in_state(tmp_path)
    store.record([parse_event(e) for e in _events()])
    store.close()
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:
        conn.execute("DROP TABLE event_facts")
        conn.execute("PRAGMA user_version = 1")
    before = (tmp_path / "events.sqlite").read_bytes()

    class _Config:
        state_dir = tmp_path

    rows = sources._events(_Config(), ED)  # type: ignore[arg-type]
    assert len(rows) == 7
    assert (tmp_path / "events.sqlite").read_bytes() == before


LISTS = {
    "plain": "email,organisation,status\nanna@example.org,ACME,subscribed\n",
    "bom, semicolons, spaces in the header": (
        "\ufeffEmail ; Organisation;status\n Anna@Example.org ;  ACME   Ltd ;subscribed\n"
    ),
    "a repeated address keeps the first organisation": (
        "email,organisation,status\nanna@example.org,,subscribed\n"
        "ANNA@example.org,ACME,subscribed\nanna@example.org,Other,subscribed\n"
    ),
    "a quoted organisation with the delimiter and a line break": (
        'email,organisation,status\nanna@example.org,"ACME,\nInc.",subscribed\n'
    ),
    "control characters in the organisation": (
        "email,organisation,status\nanna@example.org,AC\u202eME\x07,subscribed\n"
    ),
    "an international domain": (
        "email,organisation,status\nanna@bücher.example,Bücher,subscribed\n"
    ),
}


@pytest.mark.parametrize("text", LISTS.values(), ids=LISTS.keys())
def test_organisations_read_without_validation_match_the_validating_loader(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text(text, encoding="utf-8")
    listed = load_subscribers(path).recipients
    expected = {r.email.lower(): r.organisation for r in listed}
    found = organisations(path, [r.email for r in listed])
    assert {a: found.get(a) for a in expected} == expected
