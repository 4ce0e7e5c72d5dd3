"""Uncertain batches settle themselves: SendGrid's signed events, received by the real webhook
under uvicorn, prove who of an uncertain batch was accepted; `status` counts them accepted and
`send --resend-uncertain` resends only the others, and only after the configured wait.

The uncertain batch is made for real: the fake SendGrid accepts the request and closes the
connection without an answer (``accept_then_drop``), so the send cannot know it was taken.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner
from conftest import TEST_SECRET
from fake_sendgrid import FakeSendGrid
from serve_helpers import SendGridKeys, running
from test_send import AUDIENCE, ED, configure, ledger_of

from newsflash.cli import main
from newsflash.config import Config
from newsflash.sending.send import send_edition
from newsflash.serve.app import create_app
from newsflash.serve.webhook import KEY_VAR
from newsflash.state.events import EventStore, parse_event
from newsflash.state.ledger import Ledger, LedgerRecipient
from newsflash.transports.factory import make_transport

UNCERTAIN = AUDIENCE[:5]  # the first batch: accepted by SendGrid, its answer lost


def _uncertain_send(workspace: Path, sg: FakeSendGrid, **settings: object) -> Config:
    config = configure(workspace, batch_size=5, **settings)
    sg.inject("accept_then_drop")
    report = send_edition(config, ED, transport=make_transport(config))
    assert report.uncertain == 5 and report.accepted_now == 5
    assert report.status is not None and list(report.status.uncertain_recipients) == UNCERTAIN
    return config


def _custom_args(sg: FakeSendGrid) -> dict[str, tuple[str, str]]:
    """address -> (recipient id, X-Message-Id) of every request SendGrid took."""
    found = {}
    for request in sg.accepted_requests:
        for p in request.body["personalizations"]:
            found[p["to"][0]["email"]] = (p["custom_args"]["recipient_id"], request.message_id)
    return found


def _event(n: int, kind: str, address: str, sg: FakeSendGrid, **extra: Any) -> dict[str, Any]:
    rid, message_id = _custom_args(sg)[address]
    return {
        "email": address,
        "timestamp": int(datetime.now(UTC).timestamp()),
        "event": kind,
        "sg_event_id": f"settle-{n}",
        "sg_message_id": f"{message_id}.recvd-5f7b8-abc-1-0",
        "edition": ED,
        "recipient_id": rid,
        "category": ["newsflash", f"edition-{ED}"],
        **extra,
    }


def _post_events(config: Config, events: list[dict[str, Any]]) -> None:
    keys = SendGridKeys()
    app = create_app(config, environ={"NEWSFLASH_SECRET": TEST_SECRET, KEY_VAR: keys.public_b64})
    body = json.dumps(events).encode()
    with running(app) as server:
        now = int(datetime.now(UTC).timestamp())
        answer = server.request("POST", "/webhooks/sendgrid", body, keys.headers(body, now))
    assert answer.status == 200, answer.text


def _cli(config: Config, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config.path), *args])


def test_events_settle_an_uncertain_batch_and_resend_uncertain_sends_exactly_the_others(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = _uncertain_send(workspace, sg)
    a, b, c, d, e = UNCERTAIN
    _post_events(
        config,
        [
            _event(1, "processed", a, sg),
            _event(2, "delivered", b, sg),
            _event(3, "dropped", c, sg, reason="Invalid SMTPAPI header"),
            _event(4, "open", d, sg),  # engagement is not one of the proofs counted
            _event(5, "processed", e, sg, category=["newsflash", "test"]),  # a test copy's
        ],
    )

    status = _cli(config, "status", ED, "--transport", "sendgrid")
    assert status.exit_code == 0, status.output
    assert re.search(r"accepted\s+│\s+8 │", status.output), status.output
    assert re.search(r"uncertain\s+│\s+2 │", status.output), status.output
    with ledger_of(config) as ledger:
        st = ledger.status(ED)
        assert (st.accepted, st.uncertain) == (8, 2)
        assert list(st.uncertain_recipients) == [d, e]
        settled = ledger._conn.execute(
            "SELECT r.email, b.message_id, b.reason FROM recipients r JOIN batches b "
            "ON b.id = r.batch_id WHERE r.email IN (?, ?, ?) ORDER BY r.seq",
            (a, b, c),
        ).fetchall()
    first_message_id = _custom_args(sg)[a][1]
    assert [(row[0], row[1]) for row in settled] == [(x, first_message_id) for x in (a, b, c)]
    assert all("SendGrid's events" in row[2] for row in settled)
    assert f"uncertain (2):\n  {d}\n  {e}" in status.output

    before = Counter(sg.edition_recipients(ED))
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=61)):
        resent = _cli(config, "send", ED, "--resend-uncertain", "--yes")
    assert resent.exit_code == 0, resent.output
    assert Counter(sg.edition_recipients(ED)) - before == Counter([d, e])
    with ledger_of(config) as ledger:
        assert ledger.status(ED).complete


def test_resend_uncertain_before_the_wait_sends_nothing_and_says_from_when(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = _uncertain_send(workspace, sg, resend_uncertain_after_minutes=90)
    with ledger_of(config) as ledger:
        rows = ledger._conn.execute("SELECT created_at FROM batches WHERE state = 'uncertain'")
        (sent_at,) = {row[0] for row in rows}
    ready = datetime.fromisoformat(sent_at) + timedelta(minutes=90)
    before = len(sg.request_log)
    with time_machine.travel(datetime.fromisoformat(sent_at) + timedelta(minutes=30)):
        early = _cli(config, "send", ED, "--resend-uncertain", "--yes")
    assert early.exit_code == 1, early.output
    assert len(sg.request_log) == before  # nothing sent
    text = " ".join(early.output.split())
    assert "5 uncertain recipient(s) are not resent yet" in text
    assert f"from {ready:%Y-%m-%d %H:%M:%S} UTC" in text
    assert "resend_uncertain_after_minutes = 90" in text
    with time_machine.travel(ready + timedelta(seconds=1)):
        later = _cli(config, "send", ED, "--resend-uncertain", "--yes")
    assert later.exit_code == 0, later.output
    assert Counter(sg.edition_recipients(ED)) == Counter(
        AUDIENCE + UNCERTAIN
    )  # the documented price


def test_a_dry_run_counts_only_the_uncertain_recipients_old_enough_and_unvouched(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = _uncertain_send(workspace, sg)
    _post_events(config, [_event(1, "processed", UNCERTAIN[0], sg)])
    now = datetime.now(UTC)
    with time_machine.travel(now + timedelta(minutes=5)):
        early = send_edition(config, ED, dry_run=True, resend_uncertain=True)
    assert early.to_send == 0 and "4 uncertain recipient(s) are not resent yet" in early.held_back
    with time_machine.travel(now + timedelta(minutes=61)):
        late = send_edition(config, ED, dry_run=True, resend_uncertain=True)
    assert late.to_send == 4 and late.held_back == "" and late.already_accepted == 6


def test_a_plain_rerun_settles_events_and_never_resends_the_uncertain(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = _uncertain_send(workspace, sg)
    _post_events(config, [_event(n, "delivered", x, sg) for n, x in enumerate(UNCERTAIN[:2])])
    requests = len(sg.request_log)
    again = send_edition(config, ED, transport=make_transport(config))
    assert again.settled == 2 and again.uncertain == 3 and len(sg.request_log) == requests


# -- the ledger's part, without HTTP: who may settle what ---------------------------------------

ROWS = [LedgerRecipient(f"r{i}", f"p{i}@example.org") for i in range(4)]


def _killed_mid_request(path: Path) -> None:
    """A send that claimed a batch and died before the answer: the batch stays in flight."""
    ledger = Ledger(path)
    with ledger.sending(ED):
        ledger.start_send(ED, "h", "{}", ROWS)
        assert ledger.next_batch(ED, 3) is not None
    ledger.close()


def test_a_batch_left_in_flight_is_settled_only_by_the_holder_of_the_send_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    _killed_mid_request(path)
    with Ledger(path) as ledger:
        assert ledger.doubtful(ED) == []  # a send might still be waiting for its answer
        assert ledger.settle(ED, {"r0": "m1"}) == 0
        with ledger.sending(ED):
            assert [d.recipient.recipient_id for d in ledger.doubtful(ED)] == ["r0", "r1", "r2"]
            assert ledger.settle(ED, {"r0": "m1", "r1": None, "r3": "m9"}) == 2
        st = ledger.status(ED)
        assert (st.accepted, st.in_flight, st.pending) == (2, 1, 1)


def test_settling_every_recipient_of_a_batch_leaves_no_empty_uncertain_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger, ledger.sending(ED):
        ledger.start_send(ED, "h", "{}", ROWS)
        batch = ledger.next_batch(ED, 2)
        assert batch is not None
        ledger.mark_uncertain(batch.id, "no answer")
        assert ledger.settle(ED, {"r0": "m1", "r1": "m1"}) == 2
        assert ledger.settle(ED, {"r0": "m1"}) == 0  # twice: nothing more to do
        states = dict(
            ledger._conn.execute("SELECT state, COUNT(*) FROM batches GROUP BY state").fetchall()
        )
        assert states == {"accepted": 1, "superseded": 1}
        assert ledger.status(ED).accepted == 2


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"event": "processed", "email": "someone.else@example.org"}, "another address"),
        ({"event": "processed", "edition": "2022-03"}, "another edition"),
        ({"event": "processed", "category": "test"}, "a test copy (category as one string)"),
        ({"event": "deferred"}, "not one of the proofs"),
        ({"event": "click"}, "not one of the proofs"),
        ({"event": "processed", "recipient_id": "r9"}, "a recipient id nobody has"),
        ({"event": "processed", "category": {"odd": 1}}, "an odd category is no test copy"),
    ],
)
def test_only_a_proof_for_the_same_edition_and_address_vouches(
    tmp_path: Path, event: dict[str, Any], why: str
) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    base = {
        "sg_event_id": "e1",
        "email": "P0@Example.org",
        "edition": ED,
        "recipient_id": "r0",
        "sg_message_id": "abc123.recvd-1",
    }
    store.record([parse_event({**base, **event})])
    found = store.vouched(ED, {"r0": "p0@example.org"})
    store.close()
    vouches = why.startswith("an odd category")
    assert found == ({"r0": "abc123"} if vouches else {}), why
