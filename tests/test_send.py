"""Sending the sample edition through SendGrid, as the strict fake on 127.0.0.1 sees it.

The real `sendgrid` library and our transport run unmodified against tests/fake_sendgrid.py,
which refuses what the real API refuses; faults (429, 5xx, hangs, answers lost after
acceptance) are injected per request. Backoff sleeps are recorded, not slept.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import token
from fake_sendgrid import DEFAULT_API_KEY, FakeSendGrid, running_server

from newsflash.cli import main
from newsflash.config import Config, load_config
from newsflash.errors import LedgerError, NewsflashError, SendInProgress, TransportError
from newsflash.sending import audience as audience_module
from newsflash.sending import plan
from newsflash.sending.send import SKIPPED_SUFFIX, send_edition, send_test
from newsflash.state import ledgers
from newsflash.state.ledger import Ledger, LedgerRecipient
from newsflash.subscribers import recipient_id
from newsflash.transports.factory import make_transport
from newsflash.transports.sendgrid import SendGridTransport

ED = "2022-02"
# The sample subscribers.csv: subscribed partners in the "partners" segment, in file order.
AUDIENCE = [
    "anna.keller@example.org",
    "marc.dubois@example.com",
    "lena.virtanen@example.org",
    "jonas.berg@example.org",
    "sofia.rossi@example.com",
    "eva.horvath@example.com",
    "tomas.novak@example.org",
    "maria.garcia@example.com",
    "claire.martin@example.com",
    "ioana.popescu@example.org",
]
NOT_SENT = ["piotr.nowak@example.org", "pieter.dejong@example.org", "press.office@example.com"]


def configure(ws: Path, **sendgrid: object) -> Config:
    """Set keys of [sendgrid] in the workspace's config.toml and load it.

    Approval is switched off: these tests are about sending (test_approval.py and
    test_outbox.py cover the hold on an unapproved edition). So is the sync with SendGrid's
    suppression lists before the send, unless a test asks for it: its requests would take the
    faults these tests inject for Mail Send (test_send_answers.py covers the sync). And so are
    the contributors' receipts after a complete send, which go through the same API and would
    count as requests here (test_receipts.py covers them). One batch at a time unless a test
    asks for `concurrency`: these tests count requests, sleeps and their order
    (test_send_concurrent.py sends batches side by side).
    """
    sendgrid.setdefault("sync_before_send", False)
    sendgrid.setdefault("concurrency", 1)
    path = ws / "config.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("require_approval = true", "require_approval = false")
    text, n = re.subn(r"^(\[receipts\].*\n)enabled = \w+$", r"\1enabled = false", text, flags=re.M)
    assert n == 1, "the sample config has a [receipts] table"
    match = re.search(r"^\[sendgrid\]\n(.*?)(?=^\[)", text, re.M | re.S)
    assert match, "the sample config has a [sendgrid] table"
    section = match.group(1)
    for key, value in sendgrid.items():
        line = f"{key} = {json.dumps(value)}"
        section, n = re.subn(rf"^{key} = .*$", line, section, flags=re.M)
        if not n:
            section = f"{line}\n{section}"
    path.write_text(text[: match.start(1)] + section + text[match.end(1) :], encoding="utf-8")
    return load_config(path)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def transport(config: Config, sleeps: list[float]) -> Any:
    return make_transport(config, sleep=sleeps.append)


def ledger_of(config: Config, name: str = "sendgrid") -> Ledger:
    return Ledger(ledgers.ledger_path(config, name))


def correct_an_unpinned_item(workspace: Path) -> None:
    """Append a line to a ready item that no edition is pinned to: an edit after a send."""
    item = next(
        p
        for p in sorted((workspace / "submissions").rglob("*.md"))
        if "status: ready" in p.read_text(encoding="utf-8")
        and "edition:" not in p.read_text(encoding="utf-8")
    )
    item.write_text(item.read_text(encoding="utf-8") + "\nA late correction.\n", encoding="utf-8")


def received(sg: FakeSendGrid) -> Counter[str]:
    return Counter(sg.all_recipients())


# -- the happy path ------------------------------------------------------------------------------


def test_sample_edition_reaches_every_subscribed_partner_in_the_audience_once_and_no_one_else(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert sg.all_recipients() == AUDIENCE
    assert not set(NOT_SENT) & set(sg.all_recipients())
    assert (report.accepted_now, report.total, report.requests) == (10, 10, 1)
    assert report.complete and report.status is not None and report.status.accepted == 10
    with ledger_of(config) as led:
        assert led.is_sent(ED)
    assert not ledgers.ledger_path(config, "outbox").exists()


def test_a_rerun_sends_nothing(workspace: Path, sg: FakeSendGrid, sleeps: list[float]) -> None:
    config = configure(workspace)
    send_edition(config, ED, transport=transport(config, sleeps))
    again = send_edition(config, ED, transport=transport(config, sleeps))
    assert (again.accepted_now, again.requests, again.already_accepted) == (0, 0, 10)
    assert again.complete
    assert len(sg.request_log) == 1
    assert received(sg) == Counter(AUDIENCE)


def _build_with_a_marked_email(workspace: Path, marker: str) -> Path:
    """`newsflash build`, then its cached email marked, so a send that rendered it again
    (rather than read what the build rendered) would not carry the marker."""
    result = CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), "build", ED])
    assert result.exit_code == 0, result.output
    (cached,) = (workspace / "state" / "render-cache").glob("*.json")
    doc = json.loads(cached.read_text(encoding="utf-8"))
    doc["html"] = doc["html"].replace("</body>", f"<p>{marker}</p></body>", 1)
    cached.write_text(json.dumps(doc), encoding="utf-8")
    return cached


def test_a_send_after_the_build_sends_the_email_that_build_rendered(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    _build_with_a_marked_email(workspace, "rendered by the approved build")
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.complete and received(sg) == Counter(AUDIENCE)
    html = sg.delivered_requests[-1].body["content"][1]["value"]
    assert "rendered by the approved build" in html


def test_a_send_after_an_item_changed_since_the_build_renders_the_change(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    _build_with_a_marked_email(workspace, "rendered by the approved build")
    correct_an_unpinned_item(workspace)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.complete
    html = sg.delivered_requests[-1].body["content"][1]["value"]
    assert "A late correction." in html
    assert "rendered by the approved build" not in html


def test_the_request_is_exactly_the_json_sendgrid_expects(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    build = ledgers.build_edition(config, ED, ledger_name="sendgrid")
    send_edition(config, ED, transport=transport(config, sleeps), build=build)
    [request] = sg.delivered_requests
    body = request.body
    assert set(body) == {
        "personalizations",
        "from",
        "subject",
        "content",
        "categories",
        "custom_args",
        "reply_to",
    }
    assert body["from"] == {"email": "newsflash@example.org", "name": "The ASA Secretariat"}
    assert body["reply_to"] == {"email": "secretariat@example.org"}
    assert body["subject"] == build.email.subject
    assert body["content"] == [
        {"type": "text/plain", "value": build.email.text},
        {"type": "text/html", "value": build.email.html},
    ]
    assert body["categories"] == ["newsflash", "edition-2022-02"]
    assert body["custom_args"] == {"newsletter": "ASA Newsflash"}
    assert len(body["personalizations"]) == 10  # one per recipient
    rid = recipient_id("anna.keller@example.org")
    assert body["personalizations"][0] == {
        "to": [{"email": "anna.keller@example.org", "name": "Anna Keller"}],
        "substitutions": {
            "-first_name-": "Anna",
            "-first_name_html-": "Anna",
            "-recipient_id-": rid,
            "-unsubscribe_token-": token(rid),
        },
        "custom_args": {"edition": "2022-02", "recipient_id": rid},
        "headers": {
            "List-Unsubscribe": (
                f"<https://newsflash.example.org/unsubscribe/{token(rid)}>, "
                f"<mailto:unsubscribe@example.org?subject=unsubscribe-{token(rid)}>"
            ),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    assert request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert "-first_name_html-" in build.email.html and "-first_name-" in build.email.text


def test_asm_group_and_sandbox_mode_come_from_config_and_sandbox_has_its_own_ledger(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, asm_group_id=4242, sandbox=True)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    [request] = sg.sandbox_requests
    assert request.body["asm"] == {"group_id": 4242}
    assert request.body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert sg.all_recipients() == []  # sandbox delivers nothing
    assert report.transport == "sendgrid-sandbox"
    # ...so the real ledger knows nothing: a real send later reaches everyone.
    assert not ledgers.ledger_path(config, "sendgrid").exists()
    assert ledgers.ledger_path(config, "sendgrid-sandbox").exists()


def test_batches_follow_the_configured_size(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=3)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    sizes = [len(r.body["personalizations"]) for r in sg.delivered_requests]
    assert sizes == [3, 3, 3, 1]
    assert report.requests == 4
    assert sg.all_recipients() == AUDIENCE


def test_progress_is_reported_after_every_batch(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=4)
    seen: list[tuple[int, int]] = []
    send_edition(
        config,
        ED,
        transport=transport(config, sleeps),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(4, 10), (8, 10), (10, 10)]


# -- failures ------------------------------------------------------------------------------------


def test_429_waits_until_the_rate_limit_resets_then_succeeds(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=5)
    sg.inject(429, reset_in=7)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.complete and report.requests == 3
    assert len(sleeps) == 1 and 5 <= sleeps[0] <= 8.5  # X-RateLimit-Reset is whole seconds
    assert received(sg) == Counter(AUDIENCE)


def test_ctrl_c_during_a_rate_limit_wait_leaves_the_batch_not_sent_rather_than_uncertain(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = configure(workspace, batch_size=5)
    sg.inject(429, reset_in=7)

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        send_edition(config, ED, transport=make_transport(config, sleep=interrupted))
    with ledger_of(config) as ledger:
        st = ledger.status(ED)
    assert (st.uncertain, st.in_flight, st.failed) == (0, 0, 5)
    report = send_edition(config, ED, transport=make_transport(config))
    assert report.complete and received(sg) == Counter(AUDIENCE)


def test_429_beyond_max_rate_limit_wait_stops_with_a_clear_error_and_resumes_later(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=5, max_rate_limit_wait=10)
    sg.inject(429, reset_in=3600)
    with pytest.raises(TransportError, match=r"rate limit \(429\).*max_rate_limit_wait"):
        send_edition(config, ED, transport=transport(config, sleeps))
    assert sleeps == [] and sg.all_recipients() == []
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.complete and received(sg) == Counter(AUDIENCE)


@pytest.mark.parametrize("statuses", [(500,), (503,), (500, 503, 500)])
def test_5xx_is_retried_with_backoff_then_succeeds(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], statuses: tuple[int, ...]
) -> None:
    config = configure(workspace, retries=4)
    for status in statuses:
        sg.inject(status)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.complete and report.requests == len(statuses) + 1
    assert len(sleeps) == len(statuses)
    assert all(0 <= s <= 30 for s in sleeps)  # exponential with full jitter, capped
    assert received(sg) == Counter(AUDIENCE)


def test_retries_exhausted_leave_the_batch_failed_and_a_rerun_sends_it(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=5, retries=2)
    sg.inject(503, times=3)  # the first batch: 1 try + 2 retries
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.stopped.startswith("a batch failed") and report.failed == 5
    assert report.requests == 3 and sg.all_recipients() == []
    assert report.status is not None and len(report.status.failed_recipients) == 5
    again = send_edition(config, ED, transport=transport(config, sleeps))
    assert again.complete and again.accepted_now == 10
    assert received(sg) == Counter(AUDIENCE)


def test_an_item_arriving_mid_send_neither_blocks_the_resume_nor_joins_the_edition(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=5, retries=0)
    sg.inject("slow", seconds=0)  # the first batch goes through
    sg.inject(503)  # then an outage: the send stops half way
    stopped = send_edition(config, ED, transport=transport(config, sleeps))
    assert stopped.stopped and len(sg.all_recipients()) == 5
    late = workspace / "submissions" / "2022-02" / "late-news.md"
    late.write_text(
        "---\ntitle: Late news\nsection: alliance\ndate: 2022-02-20\n---\nArrived late.\n",
        encoding="utf-8",
    )
    resumed = send_edition(config, ED, transport=transport(config, sleeps))
    assert resumed.complete and received(sg) == Counter(AUDIENCE)
    html = sg.delivered_requests[-1].body["content"][1]["value"]
    assert "Late news" not in html
    left_out = ledgers.build_edition(config, ED, ledger_name="sendgrid").edition.left_out
    assert any(
        lo.key == "2022-02/late-news.md" and "when its send started" in lo.reason for lo in left_out
    )
    march = ledgers.build_edition(config, "2022-03", ledger_name="sendgrid").edition
    assert "2022-02/late-news.md" in [i.key for i in march.items]


def test_connection_refused_is_retried_and_then_reported_as_not_sent(
    workspace: Path, sleeps: list[float]
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = configure(workspace, retries=3)
    t = SendGridTransport(
        DEFAULT_API_KEY,
        host=f"http://127.0.0.1:{port}",
        from_email="newsflash@example.org",
        retries=3,
        sleep=sleeps.append,
    )
    from newsflash.message import message_from
    from newsflash.personalise import Person

    message = message_from(config, ledgers.build_edition(config, ED).email)
    result = t.send([Person("r1", "a@example.org", "A")], message)
    assert result.outcome == "failed" and result.requests == 4 and len(sleeps) == 3
    assert "could not reach" in result.reason


def test_400_stops_with_sendgrids_messages_and_their_fields(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    # config.toml refuses such an address at load; past that, SendGrid's 400 must still read well.
    config = configure(workspace)
    sender = config.model.sender.replace(from_email="newsflash@localhost")
    config = dataclasses.replace(config, model=config.model.replace(sender=sender))
    with pytest.raises(TransportError) as info:
        send_edition(config, ED, transport=transport(config, sleeps))
    message = str(info.value)
    assert info.value.status == 400
    assert "from.email: Does not contain a valid address." in message
    assert "run `newsflash send 2022-02` again" in message
    with ledger_of(config) as led:
        st = led.status(ED)
    assert st.failed == 10 and st.accepted == 0 and st.uncertain == 0


def test_401_stops_and_says_how_to_set_the_key(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.revoked-key-value")
    config = configure(workspace)
    with pytest.raises(TransportError) as info:
        send_edition(config, ED, transport=transport(config, sleeps))
    assert info.value.status == 401
    assert "set SENDGRID_API_KEY" in str(info.value) and "Mail Send" in str(info.value)
    assert "revoked-key-value" not in str(info.value)


def test_403_says_the_key_lacks_the_mail_send_permission(
    workspace: Path, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(keys_without_scope=["SG.read-only"]) as server:
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.read-only")
        monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", server.url)
        config = configure(workspace)
        with pytest.raises(TransportError, match=r"lacks permission.*Mail Send") as info:
            send_edition(config, ED, transport=transport(config, sleeps))
    assert "SG.read-only" not in str(info.value)


def test_timeout_makes_the_batch_uncertain_which_only_resend_uncertain_sends_again(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=5, timeout=0.3, resend_uncertain_after_minutes=0)
    sg.inject("hang", seconds=1.0)  # no answer in time; SendGrid did not take it
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.uncertain == 5 and report.accepted_now == 5 and not report.stopped
    assert sleeps == []  # never retried automatically
    assert sg.all_recipients() == AUDIENCE[5:]
    assert report.status is not None
    assert list(report.status.uncertain_recipients) == AUDIENCE[:5]

    result = CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), "status", ED])
    assert result.exit_code == 0, result.output
    assert all(address in result.output for address in AUDIENCE[:5])
    assert "--resend-uncertain" in result.output

    plain = send_edition(config, ED, transport=transport(config, sleeps))
    assert plain.accepted_now == 0 and plain.uncertain == 5 and plain.requests == 0
    resent = send_edition(config, ED, transport=transport(config, sleeps), resend_uncertain=True)
    assert resent.accepted_now == 5 and resent.complete
    assert received(sg) == Counter(AUDIENCE)


def test_answer_lost_after_sendgrid_accepted_is_uncertain_and_not_sent_twice(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=5, timeout=0.3)
    sg.inject("accept_then_hang", seconds=1.0)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.uncertain == 5
    send_edition(config, ED, transport=transport(config, sleeps))  # a plain re-run
    assert received(sg) == Counter(AUDIENCE)  # everyone exactly once


def test_two_batches_in_a_row_without_an_answer_stop_the_send(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=2, timeout=0.2)
    sg.inject("drop", times=2)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert "in a row got no answer" in report.stopped
    assert report.uncertain == 4 and report.accepted_now == 0
    assert report.status is not None and report.status.pending == 6


def test_the_api_key_appears_in_no_output_error_log_or_file(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SG.v3ry-s3cret-KEY.do-not-print"
    caplog.set_level("DEBUG")
    with running_server(api_keys=[secret]) as server:
        monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", server.url)
        configure(workspace, batch_size=4)
        cfg = ["--config", str(workspace / "config.toml")]
        outputs = []
        monkeypatch.setenv("SENDGRID_API_KEY", secret)
        for args in (
            ["send", ED, "--dry-run"],
            ["send", ED, "--to", "me@example.org"],
            ["send", ED, "--yes"],
            ["status", ED],
            ["--debug", "send", ED],
        ):
            result = CliRunner().invoke(main, [*cfg, *args])
            outputs += [result.output, repr(result.exception)]
        monkeypatch.setenv("SENDGRID_API_KEY", secret + "x")  # wrong key: 401
        (workspace / "state" / "ledger.sqlite").unlink()
        for args in (["send", ED, "--yes"], ["--debug", "send", ED, "--yes"]):
            result = CliRunner().invoke(main, [*cfg, *args])
            assert result.exit_code != 0
            outputs += [result.output, repr(result.exception), str(result.exception)]
        assert len(server.delivered_requests) == 4
    assert "SENDGRID_API_KEY" in "".join(outputs)  # the 401 told how to set it...
    everything = "\n".join(outputs) + caplog.text
    assert "v3ry-s3cret" not in everything  # ...without showing it
    for path in workspace.rglob("*"):
        if path.is_file():
            assert b"v3ry-s3cret" not in path.read_bytes(), path


def test_a_key_with_a_line_break_is_refused_without_repeating_it(
    workspace: Path, sg: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.abc\ndef-hidden")
    with pytest.raises(NewsflashError) as info:
        make_transport(configure(workspace))
    assert "line breaks" in str(info.value) and "hidden" not in str(info.value)


# -- the ledger's guarantees ---------------------------------------------------------------------


def test_a_concurrent_second_send_of_the_edition_is_refused(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    with (
        ledger_of(config) as other,
        other.sending(ED),
        pytest.raises(SendInProgress, match="another send of edition 2022-02 is running"),
    ):
        send_edition(config, ED, transport=transport(config, sleeps))
    assert sg.request_log == []


def test_a_scheduled_send_that_finds_another_send_running_sends_nothing_and_reports_no_failure(
    workspace: Path, sg: FakeSendGrid
) -> None:
    """The scheduler tells "someone else is sending" from a failure by the error's class."""
    from newsflash.schedule import jobs

    config = configure(workspace)
    due = f"{ED}-01T09:00:00+00:00"
    (config.state_dir).mkdir(parents=True, exist_ok=True)
    (config.state_dir / jobs.MARKER_FILE).write_text(
        json.dumps({"edition": ED, "due": due, "started_at": due}), encoding="utf-8"
    )
    with ledger_of(config) as other, other.sending(ED):
        outcome = jobs.run_send(str(config.path), ED)
    assert outcome == f"another process is sending edition {ED}; this run sends nothing"
    assert sg.request_log == []  # neither the edition nor a failure notice went out
    assert jobs.interrupted_send(config) is not None  # the running send's marker is kept


def test_an_edition_changed_after_its_send_started_is_refused(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=5)
    sg.inject(401)  # the send stops at its first batch, after freezing the recipients
    with pytest.raises(TransportError):
        send_edition(config, ED, transport=transport(config, sleeps))
    sg.reset()
    correct_an_unpinned_item(workspace)
    with pytest.raises(LedgerError, match="changed after sending started"):
        send_edition(config, ED, transport=transport(config, sleeps))
    assert sg.request_log == []


def test_items_of_a_sent_edition_are_not_taken_by_the_next_one(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(workspace)
    before = ledgers.build_edition(config, "2022-03")
    sent_keys = {i.key for i in ledgers.build_edition(config, ED).edition.items}
    assert sent_keys & {i.key for i in before.edition.items}  # unpinned items are shared
    send_edition(config, ED, transport=transport(config, sleeps))
    after = ledgers.build_edition(config, "2022-03")
    assert not sent_keys & {i.key for i in after.edition.items}
    reasons = dict((lo.key, lo.reason) for lo in after.edition.left_out)
    assert all(
        "already published" in reasons[k]
        for k in sent_keys
        if k in {i.key for i in before.edition.items}
    )


def test_published_items_are_the_same_in_every_shell_and_sendgrid_decides_once_it_has_sent(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(workspace)
    before = {i.key for i in ledgers.build_edition(config, "2022-03").edition.items}
    send_edition(config, ED, transport=make_transport(config, "outbox"))
    with_key = {i.key for i in ledgers.build_edition(config, "2022-03").edition.items}
    monkeypatch.delenv("SENDGRID_API_KEY")
    without_key = {i.key for i in ledgers.build_edition(config, "2022-03").edition.items}
    assert with_key == without_key < before  # before a real send, the rehearsal counts
    monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_API_KEY)
    send_edition(config, "2022-03", transport=transport(config, sleeps))
    assert ledgers.publication_ledger_name(config) == "sendgrid"  # now SendGrid's ledger rules
    april = {i.key for i in ledgers.build_edition(config, "2022-04").edition.items}
    assert not april & with_key


def test_a_partner_who_unsubscribed_since_the_send_started_is_not_sent(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=3, retries=0)
    csv = workspace / "subscribers.csv"
    sg.inject(503, times=1)  # the first batch fails: the send stops after freezing everyone
    first = send_edition(config, ED, transport=transport(config, sleeps))
    assert first.stopped
    row = "tomas.novak@example.org,Tomáš,Novák,VŠB Mobility Centre,partners;wg1;projects,"
    text = csv.read_text(encoding="utf-8")
    assert row + "subscribed" in text
    csv.write_text(text.replace(row + "subscribed", row + "unsubscribed"), encoding="utf-8")

    def edit_during_the_send(done: int, total: int) -> None:
        if done == 3:  # after the first batch: Ioana leaves the list altogether
            text = csv.read_text(encoding="utf-8")
            csv.write_text(
                "\n".join(line for line in text.splitlines() if not line.startswith("ioana"))
                + "\n",
                encoding="utf-8",
            )

    report = send_edition(
        config, ED, transport=transport(config, sleeps), progress=edit_during_the_send
    )
    assert set(sg.all_recipients()) == set(AUDIENCE) - {
        "tomas.novak@example.org",
        "ioana.popescu@example.org",
    }
    assert report.skipped == 2 and report.failed == 0 and report.complete
    assert report.status is not None
    reasons = dict(report.status.failed_recipients)
    assert reasons["tomas.novak@example.org"] == "unsubscribed" + SKIPPED_SUFFIX
    assert reasons["ioana.popescu@example.org"] == "removed from subscribers.csv" + SKIPPED_SUFFIX


def test_an_empty_audience_is_refused_before_anything_is_frozen(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    (workspace / "subscribers.csv").write_text("email,status\n", encoding="utf-8")
    config = configure(workspace)
    with pytest.raises(NewsflashError, match="no one to send to"):
        send_edition(config, ED, transport=transport(config, sleeps))
    assert not ledgers.ledger_path(config).exists()


def test_sendgrid_without_a_key_is_refused_with_how_to_set_it(workspace: Path) -> None:
    config = configure(workspace)
    with pytest.raises(NewsflashError, match="export SENDGRID_API_KEY="):
        make_transport(config, "sendgrid")
    assert make_transport(config).name == "outbox"


# -- the command line ----------------------------------------------------------------------------


def run(ws: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(ws / "config.toml"), *args])


def test_to_sends_one_test_copy_that_the_ledger_does_not_count(
    workspace: Path, sg: FakeSendGrid
) -> None:
    configure(workspace)
    result = run(workspace, "send", ED, "--to", "Me@Example.org")
    assert result.exit_code == 0, result.output
    assert "test copy sent" in result.output
    [request] = sg.delivered_requests
    assert request.to_addresses == ["Me@example.org"]
    assert request.body["subject"].startswith("[TEST] ")
    assert "test" in request.body["categories"]
    assert not ledgers.ledger_path(load_config(workspace / "config.toml")).exists()
    result = run(workspace, "send", ED, "--yes")  # the real send still reaches everyone
    assert result.exit_code == 0, result.output
    assert sg.all_recipients()[1:] == AUDIENCE


def test_a_test_copy_to_a_partner_greets_them_by_name(workspace: Path, sg: FakeSendGrid) -> None:
    config = configure(workspace)
    send_test(config, ED, "lena.virtanen@example.org")
    [request] = sg.delivered_requests
    assert request.body["personalizations"][0]["substitutions"]["-first_name-"] == "Lena"


def test_dry_run_sends_nothing_and_shows_the_counts_and_first_request(
    workspace: Path, sg: FakeSendGrid
) -> None:
    configure(workspace, batch_size=4)
    result = run(workspace, "send", ED, "--dry-run")
    assert result.exit_code == 0, result.output
    assert sg.request_log == []
    assert not (workspace / "state").exists()
    assert "10 to send now in about 3 request(s)" in result.output
    assert '"personalizations"' in result.output and "anna.keller@example.org" in result.output
    assert "Bearer <redacted>" in result.output


def test_dry_run_after_a_failed_batch_shows_the_failed_partners_first(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=3, retries=0)
    sg.inject(503)
    stopped = send_edition(config, ED, transport=transport(config, sleeps))
    assert stopped.failed == 3
    plan = send_edition(config, ED, transport=transport(config, sleeps), dry_run=True)
    assert plan.first_request is not None
    first = [p["to"][0]["email"] for p in plan.first_request["body"]["personalizations"]]
    assert first == AUDIENCE[:3]


def test_send_without_a_terminal_never_asks_and_prints_a_summary(
    workspace: Path, sg: FakeSendGrid
) -> None:
    configure(workspace, batch_size=4)
    result = run(workspace, "send", ED)  # no --yes: stdin is not a terminal, so no prompt
    assert result.exit_code == 0, result.output
    assert "accepted in this run" in result.output and "Done: all 10" in result.output
    again = run(workspace, "send", ED)
    assert again.exit_code == 0 and "Nothing to send now" in again.output
    assert len(sg.delivered_requests) == 3


def test_cli_send_exits_1_and_names_the_problem_on_a_400(workspace: Path, sg: FakeSendGrid) -> None:
    configure(workspace)
    sg.inject(400)
    result = run(workspace, "send", ED, "--yes")
    assert result.exit_code == 1
    assert "SendGrid refused the request (400 Bad Request)" in result.output
    assert "Traceback" not in result.output


def test_status_of_an_edition_never_sent_says_so(workspace: Path) -> None:
    result = run(workspace, "status", ED)
    assert result.exit_code == 0 and "has not been sent" in result.output


def test_subscribers_command_summarises_and_exits_1_on_bad_rows(workspace: Path) -> None:
    ok = run(workspace, "subscribers")
    assert ok.exit_code == 0, ok.output
    assert "audience (partners)" in ok.output
    csv = workspace / "subscribers.csv"
    bad_row = "not-an-address,X,Y,Z,partners,subscribed,en\n"
    csv.write_text(csv.read_text(encoding="utf-8") + bad_row, encoding="utf-8")
    bad = run(workspace, "subscribers")
    assert bad.exit_code == 1
    assert "line 15" in bad.output and "skipped when sending" in bad.output


def test_ledger_records_one_row_per_recipient(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=3)
    send_edition(config, ED, transport=transport(config, sleeps))
    with sqlite3.connect(ledgers.ledger_path(config)) as db:
        rows = db.execute("SELECT email FROM recipients WHERE edition_id = ?", (ED,)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(AUDIENCE)


def test_a_prepared_payload_is_used_only_for_the_batch_it_was_prepared_for(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    from newsflash.message import message_from
    from newsflash.personalise import Person

    config = configure(workspace)
    t = transport(config, sleeps)
    message = message_from(config, ledgers.build_edition(config, ED).email)
    guessed, actual = Person("g1", "guessed@example.org"), Person("a1", "actual@example.org")
    t.prepare([guessed], message)
    assert t.send([actual], message).outcome == "accepted"
    t.prepare([actual], message)
    assert t.send([actual], message).outcome == "accepted"
    assert sg.all_recipients() == ["actual@example.org", "actual@example.org"]


def test_a_400_about_one_personalization_names_the_partners_address(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    from newsflash.message import message_from
    from newsflash.personalise import Person

    config = configure(workspace)
    t = transport(config, sleeps)
    message = message_from(config, ledgers.build_edition(config, ED).email)
    good, bad = Person("r1", "anna@example.org", "Anna"), Person("r2", "broken@@example.org")
    with pytest.raises(TransportError) as info:
        t.send([good, bad], message)
    assert (
        "personalizations.1.to.0.email (broken@@example.org): Does not contain a valid address."
    ) in str(info.value)
    assert sg.all_recipients() == []


def test_a_partner_back_in_the_audience_is_sent_by_the_cli_after_being_skipped(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=3, retries=0)
    csv = workspace / "subscribers.csv"
    sg.inject(503, times=1)
    assert send_edition(config, ED, transport=transport(config, sleeps)).stopped
    row = "tomas.novak@example.org,Tomáš,Novák,VŠB Mobility Centre,partners;wg1;projects,"
    text = csv.read_text(encoding="utf-8")
    csv.write_text(text.replace(row + "subscribed", row + "unsubscribed"), encoding="utf-8")
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.skipped == 1 and "tomas.novak@example.org" not in sg.all_recipients()
    csv.write_text(text, encoding="utf-8")  # resubscribed
    result = run(workspace, "send", ED, "--yes")
    assert result.exit_code == 0, result.output
    assert Counter(sg.all_recipients()) == Counter(AUDIENCE)


def test_status_prints_reasons_that_look_like_terminal_markup_as_they_are(
    workspace: Path,
) -> None:
    config = configure(workspace)
    with ledger_of(config) as ledger, ledger.sending(ED):
        ledger.start_send(ED, "h" * 64, '{"items": []}', [LedgerRecipient("r1", "a@example.org")])
        batch = ledger.next_batch(ED, 10)
        assert batch is not None
        ledger.mark_failed(batch.id, "proxy said [/error] and [bold]no[/bold]")
    result = run(workspace, "status", ED, "--transport", "sendgrid")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "[/error]" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "break_the_list",
    [
        pytest.param(lambda csv: csv.unlink(), id="moved"),
        pytest.param(lambda csv: csv.write_bytes(b""), id="half_saved_empty"),
        pytest.param(lambda csv: csv.write_bytes(b"email,first_na"), id="half_saved_header"),
    ],
)
def test_a_list_that_cannot_be_read_during_the_send_stops_it_and_status_says_so(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], break_the_list: Any
) -> None:
    config = configure(workspace, batch_size=3)
    csv = workspace / "subscribers.csv"
    text = csv.read_text(encoding="utf-8")
    row = "tomas.novak@example.org,Tomáš,Novák,VŠB Mobility Centre,partners;wg1;projects,"

    def unreadable_after_the_first_batch(done: int, total: int) -> None:
        if done == 3:  # meanwhile Tomáš unsubscribed, in the file that could not be read
            break_the_list(csv)

    report = send_edition(
        config, ED, transport=transport(config, sleeps), progress=unreadable_after_the_first_batch
    )
    assert "cannot be read now" in report.stopped and not report.complete
    assert sg.all_recipients() == AUDIENCE[:3]
    status = run(workspace, "status", ED)
    assert "the partner list cannot be read now" in status.output, status.output
    assert "Traceback" not in status.output

    csv.write_text(text.replace(row + "subscribed", row + "unsubscribed"), encoding="utf-8")
    resumed = send_edition(config, ED, transport=transport(config, sleeps))
    assert resumed.complete and resumed.skipped == 1
    assert Counter(sg.all_recipients()) == Counter(set(AUDIENCE) - {"tomas.novak@example.org"})
    assert "cannot be read" not in run(workspace, "status", ED).output


# -- answers that are not SendGrid's "accepted" (issue 8) -----------------------------------------


def ledger_counts(config: Config, name: str = "sendgrid") -> tuple[int, int, int]:
    """(accepted, failed, uncertain) recipients of the edition."""
    with ledger_of(config, name) as led:
        st = led.status(ED)
    return st.accepted, st.failed, st.uncertain + st.in_flight


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_the_api_host_is_not_followed_and_fails_the_batch(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], status: int
) -> None:
    config = configure(workspace)
    sg.inject(status)
    with pytest.raises(TransportError) as info:
        send_edition(config, ED, transport=transport(config, sleeps))
    message = str(info.value)
    assert info.value.status == status
    assert f"{sg.url} answered {status}" in message and "[sendgrid] host" in message
    assert f"{sg.url}/portal" in message  # where it pointed, so the secretariat can tell why
    assert [(r.method, r.path) for r in sg.request_log] == [("POST", "/v3/mail/send")]
    assert sg.all_recipients() == [] and sleeps == []
    assert ledger_counts(config) == (0, 10, 0)


def test_cli_send_answered_by_a_redirect_exits_1_and_says_to_check_the_host(
    workspace: Path, sg: FakeSendGrid
) -> None:
    configure(workspace)
    sg.inject(302)
    result = run(workspace, "send", ED, "--yes")
    assert result.exit_code == 1, result.output
    assert "Done: all" not in result.output and "Traceback" not in result.output
    assert f"{sg.url} answered 302 Found" in result.output
    assert "[sendgrid] host" in result.output
    status = run(workspace, "status", ED)
    assert "answered 302" in status.output  # the reason each partner was not sent
    again = run(workspace, "send", ED, "--yes")  # the host is right again: all are sent
    assert again.exit_code == 0 and received(sg) == Counter(AUDIENCE)


def test_a_redirect_to_another_host_never_gets_the_request_or_the_api_key(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    with running_server() as elsewhere:
        sg.inject(302, location=f"{elsewhere.url}/portal")
        with pytest.raises(TransportError, match="answered 302"):
            send_edition(config, ED, transport=transport(config, sleeps))
        assert elsewhere.request_log == []


def test_a_hostile_redirect_target_is_shown_shortened_and_without_control_characters(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    sg.inject(301, location="https://evil.example/\x1b[2J\x1b]0;pwned\x07" + "a" * 5000)
    with pytest.raises(TransportError) as info:
        send_edition(config, ED, transport=transport(config, sleeps))
    first_line = str(info.value).splitlines()[0]
    assert "redirecting to https://evil.example/?[2J?]0;pwned?aaa" in first_line
    assert "\x1b" not in str(info.value) and "\x07" not in str(info.value)
    assert len(first_line) < 1000


@pytest.mark.parametrize("status", [200, 201, 203, 204, 206, 300, 304, 404, 405, 418])
def test_a_status_sendgrid_never_gives_for_an_accepted_send_fails_the_batch(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], status: int
) -> None:
    """Only 202 (200 in sandbox mode) means accepted; a wrong host answers anything."""
    config = configure(workspace)
    sg.inject(status)
    with pytest.raises(TransportError) as info:
        send_edition(config, ED, transport=transport(config, sleeps))
    assert info.value.status == status
    assert f"{sg.url} answered {status}" in str(info.value)
    assert "[sendgrid] host" in str(info.value)
    assert ledger_counts(config) == (0, 10, 0)
    assert len(sg.request_log) == 1 and sleeps == []


def test_a_200_outside_sandbox_mode_is_not_taken_for_accepted_in_a_batch_after_others(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, batch_size=4)
    sg.inject("slow", seconds=0)  # the first batch is really accepted
    sg.inject(200)
    with pytest.raises(TransportError, match=r"answered 200 OK"):
        send_edition(config, ED, transport=transport(config, sleeps))
    assert ledger_counts(config) == (4, 4, 0)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.complete and received(sg) == Counter(AUDIENCE)


def test_a_202_to_a_sandbox_request_is_uncertain_since_it_may_have_been_delivered(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace, sandbox=True, batch_size=5)
    sg.inject(202)
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.status is not None
    assert list(report.status.uncertain_recipients) == AUDIENCE[:5]
    assert ledger_counts(config, "sendgrid-sandbox") == (5, 0, 5)
    with sqlite3.connect(ledgers.ledger_path(config, "sendgrid-sandbox")) as db:
        [(reason,)] = db.execute("SELECT reason FROM batches WHERE state = 'uncertain'")
    assert "202 Accepted to a sandbox-mode request" in reason


@pytest.mark.parametrize("status", [102, 103])
def test_an_interim_1xx_answer_leaves_the_batch_uncertain_and_a_rerun_sends_no_one_twice(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float], status: int
) -> None:
    config = configure(workspace, batch_size=5)
    sg.inject(status)  # SendGrid took the first batch; the client read only the interim line
    report = send_edition(config, ED, transport=transport(config, sleeps))
    assert report.uncertain == 5 and report.accepted_now == 5 and sleeps == []
    assert ledger_counts(config) == (5, 0, 5)
    send_edition(config, ED, transport=transport(config, sleeps))  # a plain re-run
    assert received(sg) == Counter(AUDIENCE)  # everyone exactly once


def test_a_notice_answered_by_a_redirect_or_an_odd_status_is_reported_not_sent(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    t = transport(config, sleeps)
    for status in (302, 200, 204):
        sg.inject(status)
        with pytest.raises(TransportError, match=rf"answered {status}.*\[sendgrid\] host"):
            t.send_notice(["chair@example.org"], "Proof of 2022-02", "Have a look.")
    assert sg.all_recipients() == [] and len(sg.request_log) == 3
    t.send_notice(["chair@example.org"], "Proof of 2022-02", "Have a look.")
    assert sg.all_recipients() == ["chair@example.org"]


def test_cli_send_reads_the_partner_list_once_for_the_preview_and_the_send(
    workspace: Path, sg: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(workspace, batch_size=4)
    reads: list[Path] = []
    real = audience_module.read_roster

    def counted(path: Path) -> Any:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(audience_module, "read_roster", counted)
    result = run(workspace, "send", ED, "--yes")
    assert result.exit_code == 0, result.output
    assert sg.all_recipients() == AUDIENCE
    assert len(reads) == 1


def test_a_partner_who_unsubscribed_while_the_preview_waited_for_a_yes_is_not_sent(
    workspace: Path, sg: FakeSendGrid, sleeps: list[float]
) -> None:
    config = configure(workspace)
    tp = transport(config, sleeps)
    ready = plan.prepare(config, ED, tp)
    preview = send_edition(config, ED, transport=tp, dry_run=True, ready=ready)
    assert preview.to_send == 10
    csv = workspace / "subscribers.csv"
    row = "tomas.novak@example.org,Tomáš,Novák,VŠB Mobility Centre,partners;wg1;projects,"
    text = csv.read_text(encoding="utf-8")
    csv.write_text(text.replace(row + "subscribed", row + "unsubscribed"), encoding="utf-8")
    report = send_edition(config, ED, transport=tp, ready=ready)
    assert sg.all_recipients() == [a for a in AUDIENCE if a != "tomas.novak@example.org"]
    assert report.complete and report.total == 9
