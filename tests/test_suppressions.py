"""The suppression store on real SQLite files: add, lift with history kept, the fast check a
send makes, several processes at once, and the `newsflash suppressions` commands."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from serve_helpers import START, Clock

from newsflash.cli import main
from newsflash.state.sqlite import StateError
from newsflash.state.suppressions import SuppressionError, SuppressionStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock):
    s = SuppressionStore.in_state(tmp_path / "state", clock)
    yield s
    s.close()


def test_an_address_is_stored_lowercased_with_reason_source_and_time(store):
    row = store.add(
        "  Anna.Keller@Example.ORG ", "unsubscribe", "one-click", detail="edition=2026-03"
    )
    assert row is not None
    assert (row.address, row.reason, row.source, row.created_at, row.detail) == (
        "anna.keller@example.org",
        "unsubscribe",
        "one-click",
        START.isoformat(timespec="seconds"),
        "edition=2026-03",
    )
    assert [r.id for r in store.rows()] == [row.id]


def test_adding_the_same_suppression_twice_keeps_one_active_row(store):
    assert store.add("a@example.org", "bounce", "webhook") is not None
    assert store.add("A@EXAMPLE.ORG", "bounce", "webhook") is None
    assert len(store.rows()) == 1


def test_one_address_may_carry_several_reasons(store):
    store.add("a@example.org", "bounce", "webhook")
    store.add("a@example.org", "spamreport", "webhook")
    assert sorted(r.reason for r in store.rows()) == ["bounce", "spamreport"]


def test_lifting_keeps_the_history_and_a_later_suppression_starts_a_new_row(store, clock):
    store.add("a@example.org", "unsubscribe", "one-click")
    clock.advance(days=1)
    assert store.lift("A@example.org", by="by hand") == 1
    assert store.rows() == []
    clock.advance(days=1)
    store.add("a@example.org", "unsubscribe", "one-click")
    history = store.rows(include_lifted=True, address="a@example.org")
    assert [
        (r.created_at[:10], r.lifted_at and r.lifted_at[:10], r.lifted_by) for r in history
    ] == [
        ("2026-03-03", "2026-03-04", "by hand"),
        ("2026-03-05", None, None),
    ]


def test_lifting_one_reason_leaves_the_others(store):
    store.add("a@example.org", "group_unsubscribe", "webhook")
    store.add("a@example.org", "bounce", "webhook")
    assert store.lift("a@example.org", by="webhook", reasons=["group_unsubscribe"]) == 1
    assert [r.reason for r in store.rows()] == ["bounce"]


def test_lifting_an_address_that_is_not_suppressed_lifts_nothing(store):
    assert store.lift("nobody@example.org", by="by hand") == 0


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "no-at-sign",
        "two@@example.org",
        "a b@example.org",
        "a@",
        "@example.org",
        "a@example.org\nBcc: x@y.z",
        "a\x00@example.org",
        "x" * 65 + "@example.org",
    ],
)
def test_a_value_that_is_no_address_is_refused_with_its_value_named(store, bad):
    with pytest.raises(SuppressionError, match="not an email address"):
        store.add(bad, "unsubscribe", "by hand")
    assert store.rows() == []


def test_an_unknown_reason_or_source_is_refused_naming_the_choices(store):
    with pytest.raises(SuppressionError, match=r"unknown reason 'bored'.*unsubscribe, bounce"):
        store.add("a@example.org", "bored", "by hand")
    with pytest.raises(SuppressionError, match="unknown source 'rumour'"):
        store.add("a@example.org", "bounce", "rumour")


def test_the_check_a_send_makes_finds_every_suppressed_one_of_100k_addresses_in_any_case(store):
    # Its speed is bench_send's to measure (the send runs this check), not a timed test's.
    addresses = [f"partner{n}@example.org" for n in range(100_000)]
    from newsflash.state.suppressions import NewSuppression

    store.add_many([NewSuppression(a, "bounce", "sync") for a in addresses[::20]])
    store.lift(addresses[0], by="by hand")
    found = store.suppressed(a.upper() for a in addresses)
    assert len(found) == 4_999
    assert addresses[0] not in found and addresses[20] in found


def test_a_recipient_id_finds_the_address_the_store_once_held(store):
    from newsflash.subscribers import recipient_id

    store.add("Anna@example.org", "unsubscribe", "one-click")
    store.lift("anna@example.org", by="by hand")
    assert store.address_of(recipient_id("anna@example.org")) == "anna@example.org"
    assert store.address_of("0000000000000000") is None


def _writer(path: str, worker: int, count: int) -> None:
    store = SuppressionStore(Path(path))
    for n in range(count):
        store.add(f"shared{n}@example.org", "bounce", "webhook")  # every worker races for these
        store.add(f"w{worker}-{n}@example.org", "unsubscribe", "one-click")
    store.close()


def test_several_processes_writing_at_once_lose_nothing_and_double_nothing(tmp_path):
    path = tmp_path / "state" / "suppressions.sqlite"
    SuppressionStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(path), w, 40)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    store = SuppressionStore(path)
    try:
        rows = store.rows()
    finally:
        store.close()
    assert len(rows) == 40 + 4 * 40
    assert len({(r.address, r.reason) for r in rows}) == len(rows)


def test_threads_share_one_store_while_a_reader_reads(store):
    errors: list[BaseException] = []

    def write(t: int) -> None:
        try:
            for n in range(50):
                store.add(f"t{t}-{n}@example.org", "bounce", "webhook")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    seen = [len(store.suppressed(f"t0-{n}@example.org" for n in range(50))) for _ in range(20)]
    for t in threads:
        t.join()
    assert errors == []
    assert seen == sorted(seen)  # a reader sees the list only grow
    assert len(store.rows()) == 200


def test_a_store_written_by_a_newer_newsflash_is_refused(tmp_path):
    path = tmp_path / "suppressions.sqlite"
    SuppressionStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateError, match=r"newer newsflash.*upgrade"):
        SuppressionStore(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "suppressions.sqlite"
    path.write_bytes(b"this is a spreadsheet, not a database" * 100)
    with pytest.raises(StateError, match="cannot open it as a SQLite database"):
        SuppressionStore(path)


# -- newsflash suppressions ---------------------------------------------------------------------


@pytest.fixture
def cli(workspace: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COLUMNS", "200")
    return lambda *args: CliRunner().invoke(main, list(args), catch_exceptions=True)


def test_the_secretariat_adds_lists_and_lifts_by_hand(cli, workspace):
    added = cli("suppressions", "add", "Marc.Dubois@example.com", "--note", "phoned on 3 March")
    assert added.exit_code == 0, added.output
    listed = cli("suppressions", "list")
    assert "marc.dubois@example.com" in listed.output
    assert "phoned on 3 March" in listed.output
    assert "1 active suppression(s)" in listed.output
    lifted = cli("suppressions", "lift", "marc.dubois@example.com")
    assert lifted.exit_code == 0 and "lifted 1" in lifted.output
    assert "0 active" in cli("suppressions", "list").output
    history = cli("suppressions", "list", "--all")
    assert "marc.dubois@example.com" in history.output and "by hand" in history.output


def test_lifting_an_address_that_is_not_suppressed_says_so_and_exits_1(cli):
    result = cli("suppressions", "lift", "nobody@example.org")
    assert result.exit_code == 1
    assert "has no active suppression" in result.output
    assert "Traceback" not in result.output


def test_a_bad_address_or_reason_on_the_command_line_is_one_line_exit_1(cli):
    for args in (
        ("add", "not-an-address"),
        ("add", "a@example.org", "--reason", "bored"),
        ("lift", "a@example.org", "--reason", "bored"),
    ):
        result = cli("suppressions", *args)
        assert result.exit_code == 1, args
        assert result.output.startswith("error:"), result.output
