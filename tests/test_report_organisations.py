"""Each recipient's organisation is frozen into the ledger with the send, so the report counts
organisations without reading subscribers.csv: the same figures as the list gave at the send
(hostile organisations included), a partner who left the list since still counted for theirs,
and a ledger written by an older newsflash (no organisation kept) gaining the column on open
and falling back to the list exactly as before, across an upgrade in the middle of a send.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from newsflash.config import Config, load_config
from newsflash.message import Message
from newsflash.personalise import Person
from newsflash.reports import edition_report
from newsflash.reports.figures import NO_ORGANISATION, compute
from newsflash.reports.rows import NOT_LISTED, EditionReport
from newsflash.reports.sources import accepted, edition_input, read_known
from newsflash.sending.approval import approve
from newsflash.sending.send import send_edition
from newsflash.state.events import EventStore, parse_event
from newsflash.state.ledger import Ledger
from newsflash.transports.base import BatchResult
from newsflash.transports.outbox import OutboxTransport

ED = "2022-02"
HEADER = "email,first_name,last_name,organisation,segments,status,language"
BUECHER = "jo@bücher.example,Jo,J,Bücher GmbH,partners,subscribed,de\n"  # a non-ASCII address
# Hostile organisations, each with the name the report must count it under.
HOSTILE_LIST = (
    f"{HEADER}\n"
    'Mixed.Case@Example.ORG,Ann,A,"ACME, Inc.",partners,subscribed,en\n'
    'bob@example.org,Bob,B,"Bee ""B"" Ltd",partners,subscribed,en\n'
    "carl@example.org,Carl,C,  spaced    out  ,partners,subscribed,en\n"
    "dora@example.org,Dora,D,\u202eAC\x07ME\x0b,partners,subscribed,en\n"
    "eve@example.org,Eve,E,,partners,subscribed,en\n"
    "EVE@EXAMPLE.ORG,Eve,E,Late Org,partners,subscribed,en\n"
    'fay@example.org,Fay,F,"Multi\nline",partners,subscribed,en\n'
    "gus@example.org,Gus,G,acme,partners,subscribed,en\n"
    "hal@example.org,Hal,H,,partners,subscribed,en\n"
    'ida@example.org,Ida,I,"=HYPERLINK(""x"")",partners,subscribed,en\n'
    f"{BUECHER}"
    "kim@example.org,Kim,K,(no organisation),partners,subscribed,en\n"
)
EXPECTED = {
    "ACME, Inc.": 1,
    'Bee "B" Ltd': 1,
    "spaced out": 1,
    "ACME": 1,
    "Late Org": 1,  # the repeated address: its first non-empty organisation
    "Multi line": 1,
    "acme": 1,
    '=HYPERLINK("x")': 1,
    "Bücher GmbH": 1,
    NO_ORGANISATION: 2,  # hal, who names none, and kim, who names it
}


@pytest.fixture
def hostile(workspace: Path) -> Config:
    """The sample edition sent through the outbox to the hostile list, each partner clicking
    once (so every organisation has a clicker as well as members)."""
    (workspace / "subscribers.csv").write_text(HOSTILE_LIST, encoding="utf-8")
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")
    assert send_edition(config, ED).complete
    _clicks(config)
    return config


def _clicks(config: Config) -> None:
    rows = accepted(_ledger(config), ED)
    store = EventStore.in_state(config.state_dir)
    store.record(
        [
            parse_event(
                {"event": "click", "email": email, "recipient_id": rid, "edition": ED,
                 "url": "https://www.project-albatts.eu/", "useragent": "Mozilla/5.0",
                 "timestamp": 2_000_000_000 + n, "sg_event_id": f"c{n}"}
            )
            for n, (rid, email, _) in enumerate(rows)
        ]
    )  # fmt: skip
    store.close()


def _ledger(config: Config) -> Path:
    return config.state_dir / "outbox-ledger.sqlite"


def _members(report: EditionReport) -> dict[str, int]:
    return {g.name: g.recipients for g in report.engagement.organisations}


def _as_older_newsflash_left_it(path: Path) -> None:
    """The ledger as a newsflash from before the column leaves it: the same rows, no column."""
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE recipients DROP COLUMN organisation")


def _forgotten(path: Path) -> None:
    """The recipients as an older newsflash froze them, in a ledger upgraded since: NULL."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE recipients SET organisation = NULL")


def _sql_and_python(config: Config) -> tuple[EditionReport, EditionReport]:
    """The report as SQLite counts it (rolled-up store) and as Python counts its rows."""
    return edition_report(config, ED), compute(edition_input(config, read_known(config, ED)))


def test_a_fresh_send_counts_hostile_organisations_as_the_partner_list_named_them(
    hostile: Config,
) -> None:
    by_sql, by_python = _sql_and_python(hostile)
    assert _members(by_sql) == EXPECTED
    assert by_python == by_sql
    clickers = {g.name: g.clickers for g in by_sql.engagement.organisations}
    assert clickers == EXPECTED  # each partner clicked once, under the same name
    assert not any("organisation" in note for note in by_sql.notes)


@pytest.mark.parametrize(
    "text",
    [HOSTILE_LIST, HOSTILE_LIST.replace(BUECHER, "").replace("\u202e", "")],
    ids=["read by the full loader (not ASCII)", "read by the plain read (ASCII)"],
)
def test_the_organisations_recorded_give_the_figures_the_partner_list_gives(
    workspace: Path, text: str
) -> None:
    """Every figure, not only the organisations: the recorded read and the list's agree,
    whichever way the list is read (a partner naming no organisation included)."""
    (workspace / "subscribers.csv").write_text(text, encoding="utf-8")
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")
    assert send_edition(config, ED).complete
    _clicks(config)
    recorded = _sql_and_python(config)
    assert _members(recorded[0])[NO_ORGANISATION] == 2
    _forgotten(_ledger(config))
    from_the_list = _sql_and_python(config)
    assert from_the_list == recorded


def test_the_report_of_a_recorded_send_reads_no_partner_list(hostile: Config) -> None:
    """The list gone (moved, half-saved): the organisations still come, and no note says
    they are unknown."""
    before = edition_report(hostile, ED)
    hostile.subscribers_path.unlink()
    assert edition_report(hostile, ED) == before


def test_a_partner_who_left_the_list_since_still_counts_for_their_organisation(
    hostile: Config,
) -> None:
    text = HOSTILE_LIST.replace("gus@example.org,Gus,G,acme,partners,subscribed,en\n", "")
    hostile.subscribers_path.write_text(text, encoding="utf-8")
    assert _members(edition_report(hostile, ED)) == EXPECTED


def test_a_send_frozen_by_an_older_newsflash_counts_organisations_from_the_list_as_now(
    hostile: Config,
) -> None:
    """No organisation kept: the list as it is now decides, and a partner who left it since
    is "not in subscribers.csv", as before the organisation was kept."""
    _forgotten(_ledger(hostile))
    text = HOSTILE_LIST.replace("gus@example.org,Gus,G,acme,partners,subscribed,en\n", "")
    hostile.subscribers_path.write_text(text, encoding="utf-8")
    by_sql, by_python = _sql_and_python(hostile)
    assert _members(by_sql) == {**{k: n for k, n in EXPECTED.items() if k != "acme"},
                                NOT_LISTED: 1}  # fmt: skip
    assert by_python == by_sql


def test_an_older_send_whose_list_will_not_load_is_counted_with_a_note(hostile: Config) -> None:
    _forgotten(_ledger(hostile))
    hostile.subscribers_path.write_bytes(b"")
    report = edition_report(hostile, ED)
    assert _members(report) == {NOT_LISTED: 11}  # every one sent to
    assert any(note.startswith("organisations unknown: ") for note in report.notes)


def test_a_ledger_an_older_newsflash_wrote_is_read_without_the_column_and_gains_it_on_open(
    hostile: Config,
) -> None:
    path = _ledger(hostile)
    _as_older_newsflash_left_it(path)
    assert {organisation for _, _, organisation in accepted(path, ED)} == {None}
    with Ledger(path) as ledger:
        assert ledger.status(ED).accepted == 11
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(recipients)")]
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    assert columns.count("organisation") == 1
    assert version == 1  # an older newsflash may still open it
    assert _members(edition_report(hostile, ED)) == EXPECTED  # from the list, unchanged


def test_opening_a_ledger_twice_adds_the_column_once(workspace: Path) -> None:
    path = workspace / "state" / "ledger.sqlite"
    with Ledger(path):
        pass
    _as_older_newsflash_left_it(path)
    first, second = Ledger(path), Ledger(path)
    first.close()
    second.close()
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(recipients)")]
    assert columns.count("organisation") == 1


class _RefusesAfterOneBatch(OutboxTransport):
    """The outbox, refusing every batch after the first: a send that stops part way."""

    def __init__(self, config: Config) -> None:
        super().__init__(config.outbox_dir, batch_size=4)
        self.sent = 0

    def send(self, batch: Sequence[Person], message: Message) -> BatchResult:
        self.sent += 1
        if self.sent > 1:
            return BatchResult("failed", reason="refused, for the test")
        return super().send(batch, message)


def test_a_send_begun_before_the_upgrade_and_finished_after_it_counts_from_the_list(
    workspace: Path,
) -> None:
    """An older newsflash froze the recipients (no organisation) and sent one batch; this
    one adds the column on open, resumes and sends the rest: that send's organisations come
    from the list, and the next edition's are frozen with it."""
    (workspace / "subscribers.csv").write_text(HOSTILE_LIST, encoding="utf-8")
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")
    assert not send_edition(config, ED, transport=_RefusesAfterOneBatch(config)).complete
    path = _ledger(config)
    _forgotten(path)
    _as_older_newsflash_left_it(path)
    assert send_edition(config, ED).complete
    _clicks(config)
    assert {organisation for _, _, organisation in accepted(path, ED)} == {None}
    assert _members(edition_report(config, ED)) == EXPECTED  # from the list, as before
    hal = "hal@example.org,Hal,H,,partners,subscribed,en\n"
    config.subscribers_path.write_text(HOSTILE_LIST.replace(hal, ""), encoding="utf-8")
    by_sql, by_python = _sql_and_python(config)
    assert _members(by_sql) == {**EXPECTED, NO_ORGANISATION: 1, NOT_LISTED: 1}
    assert by_python == by_sql
