"""`newsflash suppressions sync` against the fake SendGrid, over real HTTP, through the library.

The fake serves SendGrid's suppression endpoints as strictly as the spec describes them
(paging limits, bodies, auth, rate limits); the store is the real SQLite one.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sendgrid
from click.testing import CliRunner
from fake_sendgrid import DEFAULT_API_KEY, FakeSendGrid, running_server
from python_http_client import exceptions as http_errors
from test_send import configure

from newsflash.cli import main
from newsflash.config import Config
from newsflash.sending.suppression_sync import SyncReport, sync_before_send, sync_suppressions
from newsflash.state.suppressions import SuppressionStore
from newsflash.transports.suppressions_api import (
    MAX_ANSWER_BYTES,
    SendGridAnswerError,
    SendGridKeyRefused,
    SendGridUnreachable,
    SuppressionSyncError,
)

SECRET_KEY = "SG.sync-secret-key-9f8e7d"
T0 = 1_700_000_000  # 2023-11-14, before everything the store does in these tests


@pytest.fixture
def sg() -> Iterator[FakeSendGrid]:
    with running_server(api_keys=[DEFAULT_API_KEY, SECRET_KEY]) as server:
        yield server


@pytest.fixture
def config(workspace: Path) -> Config:
    return configure(workspace)


@pytest.fixture
def store(config: Config) -> Iterator[SuppressionStore]:
    s = SuppressionStore.in_state(config.state_dir)
    yield s
    s.close()


Sync = Callable[..., SyncReport]


@pytest.fixture
def sync(config: Config, store: SuppressionStore, sg: FakeSendGrid) -> Sync:
    """One sync of `store` with the fake; waits are recorded in `sync.slept`, not slept."""
    slept: list[float] = []

    def run(cfg: Config | None = None, **options: Any) -> SyncReport:
        options.setdefault("page_size", 100)
        return sync_suppressions(
            cfg or config, store, SECRET_KEY, host=sg.url, sleep=slept.append, **options
        )

    run.slept = slept  # type: ignore[attr-defined]
    return run


def _active(store: SuppressionStore) -> set[tuple[str, str, str]]:
    return {(r.address, r.reason, r.source) for r in store.rows()}


def _writes(sg: FakeSendGrid) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sg.request_log if r.method != "GET"]


# -- reading every list ------------------------------------------------------------------------


def test_every_list_is_read_page_by_page_and_recorded_with_its_reason_and_sendgrids_time(
    sg, sync, store
):
    bounced = [f"bounced{i:03}@example.org" for i in range(250)]
    sg.suppressions.add_many("bounces", bounced, created=T0)
    sg.suppressions.add("blocks", "blocked@example.org", reason="no route", status="4.0.0")
    sg.suppressions.add("spam_reports", "Complainer@Example.org", created=T0 + 60, ip="10.0.0.1")
    sg.suppressions.add("invalid_emails", "typo@exmaple.org", reason="Mail domain unknown")
    sg.suppressions.add("unsubscribes", "gone@example.org", created=T0 + 120)

    report = sync()

    bounce_pages = [r.headers for r in sg.request_log if r.path == "/v3/suppression/bounces"]
    assert len(bounce_pages) == 3  # 100 + 100 + 50
    assert report.pulled == {
        "bounces": 250,
        "blocks": 1,
        "spam_reports": 1,
        "invalid_emails": 1,
        "unsubscribes": 1,
    }
    rows = {r.address: r for r in store.rows()}
    assert len(rows) == 253  # the block is counted, not suppressed
    assert "blocked@example.org" not in rows
    assert rows["complainer@example.org"].reason == "spamreport"
    assert rows["complainer@example.org"].created_at == "2023-11-14T22:14:20+00:00"
    assert rows["typo@exmaple.org"].reason == "invalid"
    assert "Mail domain unknown" in rows["typo@exmaple.org"].detail
    assert rows["gone@example.org"].reason == "unsubscribe"
    assert {r.source for r in rows.values()} == {"sync"}
    assert report.recorded == {"bounce": 250, "spamreport": 1, "invalid": 1, "unsubscribe": 1}
    assert any("blocked address(es) at SendGrid are not suppressed" in x for x in report.lines())


def test_paging_asks_for_consecutive_offsets_and_stops_at_the_short_page(sg, sync):
    sg.suppressions.add_many("unsubscribes", [f"u{i}@example.org" for i in range(200)])
    sync()
    pages = [r for r in sg.request_log if r.path == "/v3/suppression/unsubscribes"]
    assert len(pages) == 3  # 100, 100, then an empty page says the list is over


def test_the_sendgrid_page_limit_of_500_is_what_a_real_sync_asks_for(sg, config, store):
    sg.suppressions.add_many("bounces", [f"b{i:04}@example.org" for i in range(1001)])
    report = sync_suppressions(config, store, SECRET_KEY, host=sg.url, sleep=lambda s: None)
    assert report.pulled["bounces"] == 1001
    assert len(store.rows()) == 1001


# -- pushing and idempotence -------------------------------------------------------------------


def test_newsflash_unsubscribes_are_pushed_to_sendgrids_global_list(sg, sync, store):
    store.add("clicked@example.org", "unsubscribe", "one-click")
    store.add("phoned@example.org", "unsubscribe", "by hand")
    store.add("bounced@example.org", "bounce", "webhook")  # SendGrid has its own bounces
    store.add("via-sg@example.org", "unsubscribe", "webhook")  # it came from SendGrid
    report = sync()
    assert report.pushed == 2
    assert sorted(sg.suppressions.emails("unsubscribes")) == [
        "clicked@example.org",
        "phoned@example.org",
    ]


def test_a_second_sync_changes_nothing_and_writes_nothing_to_sendgrid(sg, sync, store):
    sg.suppressions.add_many("bounces", ["b1@example.org", "b2@example.org"])
    sg.suppressions.add("unsubscribes", "u@example.org", created=T0)
    store.add("clicked@example.org", "unsubscribe", "one-click")
    first = sync()
    assert first.changed
    before = store.rows(include_lifted=True)
    writes = len(_writes(sg))

    second = sync()

    assert not second.changed, second.lines()
    assert store.rows(include_lifted=True) == before
    assert len(_writes(sg)) == writes


def test_with_an_asm_group_unsubscribes_go_to_the_group_and_its_list_is_read(
    sg, workspace, store, sync
):
    grouped = configure(workspace, asm_group_id=42)
    sg.suppressions.add_group(42, ["left-group@example.org"])
    store.add("clicked@example.org", "unsubscribe", "one-click")

    report = sync(grouped)

    assert sg.suppressions.group(42) == ["left-group@example.org", "clicked@example.org"]
    assert sg.suppressions.emails("unsubscribes") == []
    assert ("left-group@example.org", "group_unsubscribe", "sync") in _active(store)
    assert report.push_target == "ASM group 42"
    assert not sync(grouped).changed  # the pushed address read back is the same unsubscribe


def test_an_asm_group_sendgrid_does_not_know_is_named_with_the_setting_to_fix(
    sg, workspace, sync, store
):
    with pytest.raises(SendGridAnswerError, match=r"asm_group_id"):
        sync(configure(workspace, asm_group_id=7))
    assert store.rows() == []


def test_one_partner_on_the_global_and_the_group_list_is_one_unsubscribe(
    sg, workspace, sync, store
):
    sg.suppressions.add("unsubscribes", "both@example.org", created=T0)
    sg.suppressions.add_group(42, ["both@example.org"])
    sync(configure(workspace, asm_group_id=42))
    assert [r.reason for r in store.rows()] == ["unsubscribe"]


# -- lifts -------------------------------------------------------------------------------------


def test_a_lift_here_removes_the_address_from_sendgrid_and_is_not_undone_by_the_next_pull(
    sg, sync, store
):
    sg.suppressions.add("bounces", "fixed@example.org", created=T0, reason="mailbox full")
    sg.suppressions.add("unsubscribes", "back@example.org", created=T0)
    sync()
    store.lift("fixed@example.org", by="by hand")
    store.lift("back@example.org", by="one-click undo")

    report = sync()

    assert sorted(report.removed) == [
        ("back@example.org", "unsubscribes"),
        ("fixed@example.org", "bounces"),
    ]
    assert sg.suppressions.emails("bounces") == []
    assert sg.suppressions.emails("unsubscribes") == []
    assert store.rows() == []
    assert not sync().changed


def test_an_opt_out_at_sendgrid_after_the_lift_is_recorded_again(sg, sync, store, clock):
    store.add("anna@example.org", "unsubscribe", "one-click", at=datetime(2026, 1, 5, tzinfo=UTC))
    store.lift("anna@example.org", by="one-click undo")  # at the frozen 2026-06-17
    later = int(datetime(2026, 6, 18, tzinfo=UTC).timestamp())
    sg.suppressions.add("unsubscribes", "anna@example.org", created=later)

    report = sync()

    assert report.removed == []
    assert sg.suppressions.emails("unsubscribes") == ["anna@example.org"]
    assert ("anna@example.org", "unsubscribe", "sync") in _active(store)


def test_a_group_opt_out_after_a_carried_lift_is_recorded_though_sendgrid_gives_no_time(
    sg, workspace, sync, store
):
    grouped = configure(workspace, asm_group_id=42)
    sg.suppressions.add_group(42)
    store.add("anna@example.org", "unsubscribe", "one-click")
    sync(grouped)  # pushed to the group
    store.lift("anna@example.org", by="by hand")
    assert sync(grouped).removed == [("anna@example.org", "group")]
    sg.suppressions.add_group(42, ["anna@example.org"])  # she leaves again, at SendGrid

    sync(grouped)

    assert ("anna@example.org", "group_unsubscribe", "sync") in _active(store)
    assert sg.suppressions.group(42) == ["anna@example.org"]


def test_a_pull_never_lifts_an_address_sendgrid_no_longer_lists(sg, sync, store):
    sg.suppressions.add("spam_reports", "angry@example.org", ip="10.0.0.1")
    sync()
    sg.suppressions.lists["spam_reports"].clear()  # someone cleaned SendGrid's list
    sync()
    assert ("angry@example.org", "spamreport", "sync") in _active(store)


def test_lifting_by_hand_says_that_the_next_sync_removes_it_at_sendgrid(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    runner = CliRunner()
    runner.invoke(main, ["suppressions", "add", "a@example.org"])
    result = runner.invoke(main, ["suppressions", "lift", "a@example.org"])
    assert result.exit_code == 0
    assert "newsflash suppressions sync" in result.output


# -- SendGrid failing --------------------------------------------------------------------------


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("fault", "times", "error", "words"),
    [
        ("401", 1, SendGridKeyRefused, "401 Unauthorized"),
        ("403", 1, SendGridKeyRefused, "Suppressions"),
        ("500", 5, SendGridUnreachable, "500 Internal Server Error"),
        ("503", 5, SendGridUnreachable, "5 attempts"),
        ("drop", 5, SendGridUnreachable, "connection broke"),
        ("302", 1, SendGridAnswerError, "redirecting to"),
        ("200", 1, SendGridAnswerError, "not JSON"),  # a web page where the API should be
        ("204", 1, SendGridAnswerError, "204 No Content"),
        ("404", 1, SendGridAnswerError, "404 Not Found"),
    ],
)
def test_a_failing_sendgrid_is_one_clear_error_naming_the_host_and_the_store_is_untouched(
    sg, sync, store, fault, times, error, words
):
    store.add("kept@example.org", "unsubscribe", "one-click")
    sg.suppressions.add("bounces", "b@example.org")
    before = store.rows(include_lifted=True)
    sg.inject(fault, times=times)
    with pytest.raises(error) as caught:
        sync()
    message = str(caught.value)
    assert words in message and sg.url in message
    assert SECRET_KEY not in message and "SG." not in message
    assert store.rows(include_lifted=True) == before
    assert sg.suppressions.emails("unsubscribes") == []  # nothing pushed after a failed pull


def test_a_refused_connection_is_unreachable_naming_the_host_and_what_to_check(config, store):
    host = _closed_port()
    with pytest.raises(SendGridUnreachable, match="could not be reached") as caught:
        sync_suppressions(config, store, SECRET_KEY, host=host, sleep=lambda s: None)
    assert host in str(caught.value) and "[sendgrid] host" in str(caught.value)


def test_a_rate_limit_within_the_wait_is_waited_out(sg, sync, store):
    sg.suppressions.add("bounces", "b@example.org")
    sg.inject("429", reset_in=5)
    sync()
    assert sync.slept and 1 <= sync.slept[0] <= 6
    assert len(store.rows()) == 1


def test_a_rate_limit_beyond_the_wait_stops_the_sync_naming_the_setting(sg, workspace, sync, store):
    sg.inject("429", reset_in=600)
    with pytest.raises(SendGridUnreachable, match="max_rate_limit_wait"):
        sync(configure(workspace, max_rate_limit_wait=30))
    assert store.rows() == []


def test_a_passing_5xx_is_retried_and_the_sync_completes(sg, sync, store):
    sg.suppressions.add("bounces", "b@example.org")
    sg.inject("503", times=2)
    sync()
    assert len(store.rows()) == 1


def test_a_push_that_fails_keeps_what_was_pulled_and_reports_the_error(sg, sync, store):
    sg.suppressions.add("bounces", "b@example.org")
    store.add("clicked@example.org", "unsubscribe", "one-click")
    sg.inject("slow", seconds=0, times=5)  # the five reads are answered as usual
    sg.inject("400")
    report = sync()
    assert ("b@example.org", "bounce", "sync") in _active(store)
    assert report.pushed == 0
    assert report.errors and "pushing unsubscribes to SendGrid stopped" in report.errors[0]


# -- hostile answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<html>Welcome</html>", "not JSON"),
        (b'{"errors": []}', "not a JSON array"),
        (b"[NaN]", "not JSON"),
        (b"\xff\xfe[]", "not JSON"),
        (json.dumps([{"email": f"x{i}@example.org"} for i in range(101)]).encode(), "at most 100"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b"[" + b" " * (MAX_ANSWER_BYTES + 10) + b"]", "over 8,000,000 bytes"),
    ],
    ids=["html", "object", "nan", "not-utf8", "over-the-limit", "deeply-nested", "huge"],
)
def test_an_answer_of_the_wrong_shape_stops_the_sync_and_records_nothing(
    sg, sync, store, body, words
):
    sg.inject("body", body=body)
    with pytest.raises(SendGridAnswerError, match=words):
        sync()
    assert store.rows() == []


def test_entries_of_the_wrong_shape_are_skipped_and_named_the_good_ones_recorded(sg, sync, store):
    page = [
        "just-a-string@example.org",
        {"created": T0},
        {"email": 42, "created": T0},
        {"email": "no at sign", "created": T0},
        {"email": "ok@example.org", "created": "yesterday", "reason": "x\x1b[31m"},
        {"email": "fine@example.org", "created": T0, "reason": "550"},
    ]
    sg.inject("body", body=json.dumps(page).encode())
    report = sync()
    assert {r.address for r in store.rows()} == {"ok@example.org", "fine@example.org"}
    assert len(report.problems) == 4
    assert "entry 1: not an object" in report.problems[0]
    assert all("\x1b" not in p for p in report.problems)
    assert all("\x1b" not in r.detail for r in store.rows())


# -- the key, the send, the command ------------------------------------------------------------


def test_the_api_key_is_never_in_a_log_or_an_error(sg, sync, store, caplog):
    caplog.set_level(logging.DEBUG)
    store.add("clicked@example.org", "unsubscribe", "one-click")
    sync()
    sg.inject("401")
    with pytest.raises(SuppressionSyncError) as caught:
        sync()
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in str(caught.value) and SECRET_KEY not in repr(caught.value)
    assert SECRET_KEY not in caught.value.body


def test_the_sync_before_a_send_never_raises_when_sendgrid_is_unreachable(config, store):
    store.add("kept@example.org", "unsubscribe", "one-click")
    outcome = sync_before_send(config, store, SECRET_KEY, host=_closed_port(), sleep=lambda s: 0)
    assert outcome.report is None and "could not be reached" in (outcome.error or "")
    assert "going on with the local store" in outcome.line()
    assert store.suppressed(["kept@example.org"]) == {"kept@example.org"}


def test_the_sync_before_a_send_reports_what_it_did(sg, config, store):
    sg.suppressions.add("bounces", "b@example.org")
    outcome = sync_before_send(config, store, SECRET_KEY, host=sg.url)
    assert outcome.error is None and outcome.report is not None
    assert "recorded 1 new suppression(s)" in outcome.line()


@pytest.fixture
def cli(workspace: Path, monkeypatch: pytest.MonkeyPatch, sg: FakeSendGrid):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", sg.url)
    return lambda *args: CliRunner().invoke(main, list(args), catch_exceptions=True)


def test_the_command_prints_what_it_read_recorded_and_pushed(cli, sg, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", SECRET_KEY)
    sg.suppressions.add("bounces", "b@example.org")
    cli("suppressions", "add", "phoned@example.org")
    result = cli("suppressions", "sync")
    assert result.exit_code == 0, result.output
    assert "1 bounces" in result.output
    assert "recorded 1 new suppression(s): 1 bounce" in result.output
    assert "pushed 1 newsflash unsubscribe(s) to SendGrid's global unsubscribes" in result.output


def test_the_command_without_a_key_is_one_line_naming_the_variable(cli):
    result = cli("suppressions", "sync")
    assert result.exit_code == 1
    assert "SENDGRID_API_KEY" in result.output and "Traceback" not in result.output


def test_the_command_with_a_refused_key_is_one_line_and_exit_1(cli, sg, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong-key")
    result = cli("suppressions", "sync")
    assert result.exit_code == 1
    assert "401" in result.output and "Traceback" not in result.output
    assert "SG.wrong-key" not in result.output


# -- the fake is as strict as the spec ---------------------------------------------------------


@pytest.fixture
def library(sg: FakeSendGrid) -> Any:
    return sendgrid.SendGridAPIClient(api_key=DEFAULT_API_KEY, host=sg.url).client


@pytest.mark.parametrize("query", [{"limit": 501}, {"limit": 0}, {"offset": -1}, {"page": 2}])
def test_the_fake_refuses_paging_outside_the_spec(library, query):
    with pytest.raises(http_errors.BadRequestsError):
        library.suppression.bounces.get(query_params=query)


@pytest.mark.parametrize(
    "body",
    [{}, {"recipient_emails": "a@example.org"}, {"recipient_emails": ["not an address"]}, []],
)
def test_the_fake_refuses_a_push_body_outside_the_spec(library, body):
    with pytest.raises(http_errors.BadRequestsError):
        library.asm.suppressions._("global").post(request_body=body)


def test_the_fake_wants_a_key_and_refuses_an_unknown_subuser(sg):
    with pytest.raises(http_errors.UnauthorizedError):
        sendgrid.SendGridAPIClient(api_key="SG.nope", host=sg.url).client.suppression.blocks.get()
    impersonating = sendgrid.SendGridAPIClient(
        api_key=DEFAULT_API_KEY, host=sg.url, impersonate_subuser="nobody"
    )
    with pytest.raises(http_errors.ForbiddenError):
        impersonating.client.suppression.blocks.get()


def test_the_fake_answers_with_rate_limit_headers_and_deletes_what_it_is_asked(library, sg):
    sg.suppressions.add_many("spam_reports", ["a@example.org", "b@example.org"])
    answer = library.suppression.spam_reports.get(query_params={"limit": 1})
    assert answer.status_code == 200 and len(json.loads(answer.body)) == 1
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
        answer.headers.keys()
    )
    with pytest.raises(http_errors.BadRequestsError):  # emails and delete_all: not both
        library.suppression.spam_reports.delete(
            request_body={"emails": ["a@example.org"], "delete_all": True}
        )
    deleted = library.suppression.spam_reports.delete(request_body={"emails": ["a@example.org"]})
    assert deleted.status_code == 204
    assert sg.suppressions.emails("spam_reports") == ["b@example.org"]
