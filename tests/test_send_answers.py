"""What SendGrid's answers mean for a batch, and what a send with a key does first.

* An answer that may follow an accepted request (a gateway's 502/504, a CDN's 520/524, a
  connection closed after the whole body was sent) makes the batch uncertain and is never
  retried; only answers that prove nothing was taken (500/503, a cut before the body left) are.
* A send through SendGrid pulls SendGrid's suppression lists first; if SendGrid can't be
  reached it says so and goes on with the local store.
* `newsflash status` counts the partners of the list the store suppresses, by reason.

Against the loopback fake SendGrid (tests/fake_sendgrid.py) and, for the two ways a connection
is cut, a bare socket server on 127.0.0.1 that cuts it at the chosen moment.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_sendgrid import DEFAULT_API_KEY, FakeSendGrid
from test_send import AUDIENCE, ED, configure, ledger_of

from newsflash.cli import main
from newsflash.config import Config
from newsflash.sending.send import send_edition
from newsflash.state.suppressions import SuppressionStore
from newsflash.transports.factory import make_transport
from newsflash.transports.retries import Policy, Retryable
from newsflash.transports.sendgrid_delivery import Delivery, Uncertain


def _send(config: Config, sleeps: list[float]) -> Any:
    return send_edition(config, ED, transport=make_transport(config, sleep=sleeps.append))


def _reasons(config: Config) -> list[str]:
    with ledger_of(config) as ledger:
        rows = ledger._conn.execute("SELECT reason FROM batches WHERE state = 'uncertain'")
        return [row[0] for row in rows]


# -- answers that may follow an accepted request --------------------------------------------------


@pytest.mark.parametrize("status", [502, 504, 520, 524])
def test_a_gateways_5xx_makes_the_batch_uncertain_and_is_never_retried(
    workspace: Path, sg: FakeSendGrid, status: int
) -> None:
    config = configure(workspace, batch_size=5, retries=4)
    sleeps: list[float] = []
    sg.inject(status)
    report = _send(config, sleeps)
    assert (report.uncertain, report.accepted_now, report.requests) == (5, 5, 2)
    assert sleeps == []
    assert sg.all_recipients() == AUDIENCE[5:]
    (reason,) = _reasons(config)
    assert f"answered {status}" in reason and "may follow a request SendGrid accepted" in reason
    again = _send(config, sleeps)  # a plain re-run resends no one
    assert again.requests == 0 and again.uncertain == 5


def test_a_gateways_answer_after_a_retried_500_still_makes_the_batch_uncertain(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = configure(workspace, batch_size=10, retries=4)
    sleeps: list[float] = []
    sg.inject(500)
    sg.inject(502)
    report = _send(config, sleeps)
    assert (report.uncertain, report.requests, len(sleeps)) == (10, 2, 1)


def test_a_connection_closed_after_the_request_was_sent_is_uncertain_and_not_retried(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = configure(workspace, batch_size=5, retries=4)
    sleeps: list[float] = []
    sg.inject("drop")
    report = _send(config, sleeps)
    assert (report.uncertain, report.requests, sleeps) == (5, 2, [])
    assert "connection broke after the request was sent" in _reasons(config)[0]


@pytest.mark.parametrize("status", [500, 503])
def test_500_and_503_prove_nothing_was_taken_and_are_retried(
    workspace: Path, sg: FakeSendGrid, status: int
) -> None:
    config = configure(workspace, retries=4)
    sleeps: list[float] = []
    sg.inject(status, times=2)
    report = _send(config, sleeps)
    assert report.complete and report.uncertain == 0 and report.requests == 3
    assert len(sleeps) == 2 and Counter(sg.all_recipients()) == Counter(AUDIENCE)


@contextmanager
def _cutting_server(*, after_body: bool) -> Iterator[str]:
    """A host that reads the request head and then resets the connection (the body never
    fully left), or reads the whole request and closes without an answer."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                    data += chunk
                if after_body:
                    head, _, body = data.partition(b"\r\n\r\n")
                    match = re.search(rb"content-length: *(\d+)", head, re.I)
                    length = int(match.group(1)) if match else 0
                    while len(body) < length and (chunk := conn.recv(1 << 20)):
                        body += chunk
                # Closing with unread data in the buffer resets the connection.

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        thread.join(5)


def _delivery(host: str, sleeps: list[float]) -> Delivery:
    return Delivery(DEFAULT_API_KEY, host, Policy(timeout=10, retries=2), sleep=sleeps.append)


def test_a_cut_before_the_body_was_sent_is_retried_as_not_taken() -> None:
    sleeps: list[float] = []
    big = {"personalizations": [], "pad": "x" * 24_000_000}  # more than the socket buffers
    with _cutting_server(after_body=False) as host:
        delivery = _delivery(host, sleeps)
        with pytest.raises(Retryable, match="could not reach"):
            delivery.deliver(big)
    assert delivery.attempts == 3 and len(sleeps) == 2


def test_a_cut_after_the_whole_body_was_sent_is_uncertain_after_one_attempt() -> None:
    sleeps: list[float] = []
    with _cutting_server(after_body=True) as host:
        delivery = _delivery(host, sleeps)
        with pytest.raises(Uncertain, match="after the request was sent"):
            delivery.deliver({"personalizations": [], "subject": "hello"})
    assert delivery.attempts == 1 and sleeps == []


# -- a send with a key syncs first -----------------------------------------------------------------


def _store(config: Config) -> SuppressionStore:
    return SuppressionStore.in_state(config.state_dir)


def _suppression_requests(sg: FakeSendGrid) -> list[str]:
    return [r.path for r in sg.request_log if r.path.startswith("/v3/suppression")]


def test_a_send_with_a_key_pulls_sendgrids_suppressions_first_and_mails_none_of_them(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = configure(workspace, sync_before_send=True)
    sg.suppressions.add("bounces", AUDIENCE[2])
    sg.suppressions.add("spam_reports", AUDIENCE[3].upper())
    store = _store(config)
    store.add(AUDIENCE[0], "unsubscribe", "one-click")
    store.close()
    report = _send(config, [])
    assert report.synced.startswith("suppressions synced with SendGrid")
    assert "recorded 2 new suppression(s): 1 bounce, 1 spamreport" in report.synced
    assert sorted(sg.all_recipients()) == sorted(set(AUDIENCE) - {AUDIENCE[0], *AUDIENCE[2:4]})
    assert AUDIENCE[0] in sg.suppressions.emails("unsubscribes")  # pushed, as a sync does
    store = _store(config)
    assert {(r.address, r.source) for r in store.rows()} >= {
        (AUDIENCE[2], "sync"),
        (AUDIENCE[3], "sync"),
    }
    store.close()


def test_a_send_whose_sync_cannot_reach_sendgrid_says_so_and_goes_on_with_the_local_store(
    workspace: Path, sg: FakeSendGrid
) -> None:
    store = _store(configure(workspace, sync_before_send=True, retries=0))
    store.add(AUDIENCE[0], "bounce", "webhook")
    store.close()
    sg.inject("drop")  # the sync's first read gets no answer
    result = CliRunner().invoke(
        main, ["--config", str(workspace / "config.toml"), "send", ED, "--yes"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "suppressions not synced with SendGrid (" in text
    assert "going on with the local store" in text
    assert "Traceback" not in result.output and DEFAULT_API_KEY not in result.output
    assert sorted(sg.edition_recipients(ED)) == sorted(AUDIENCE[1:])


@pytest.mark.parametrize(
    "settings",
    [{"sync_before_send": False}, {"sync_before_send": True, "sandbox": True}],
    ids=["switched-off", "sandbox-mode"],
)
def test_no_sync_runs_when_switched_off_or_in_sandbox_mode(
    workspace: Path, sg: FakeSendGrid, settings: dict[str, object]
) -> None:
    config = configure(workspace, **settings)
    report = _send(config, [])
    assert report.synced == "" and _suppression_requests(sg) == []


def test_a_dry_run_never_syncs(workspace: Path, sg: FakeSendGrid) -> None:
    config = configure(workspace, sync_before_send=True)
    send_edition(config, ED, transport=make_transport(config, dry_run=True), dry_run=True)
    assert sg.request_log == []


# -- status counts the suppressed ------------------------------------------------------------------


def test_status_counts_the_suppressed_partners_of_the_list_by_reason(workspace: Path) -> None:
    config = configure(workspace)
    store = _store(config)
    store.add(AUDIENCE[0], "bounce", "webhook")
    store.add(AUDIENCE[1], "unsubscribe", "one-click")
    store.add(AUDIENCE[1], "spamreport", "webhook")  # one partner, two reasons
    store.add("piotr.nowak@example.org", "bounce", "sync")  # on the list, not in the audience
    store.add("stranger@example.net", "bounce", "sync")  # not a partner of the list
    store.add(AUDIENCE[2], "unsubscribe", "one-click")
    store.lift(AUDIENCE[2], by="by hand")
    store.close()
    result = CliRunner().invoke(main, ["--config", str(config.path), "status", ED])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        "suppressed 3 partner(s) of subscribers.csv are never mailed "
        "(2 bounce, 1 spamreport, 1 unsubscribe)" in text
    ), text


def test_status_with_no_suppression_store_counts_none(workspace: Path) -> None:
    config = configure(workspace)
    result = CliRunner().invoke(main, ["--config", str(config.path), "status", ED])
    assert "suppressed 0 partner(s) of subscribers.csv" in " ".join(result.output.split())
    assert not (config.state_dir / "suppressions.sqlite").exists()  # reading creates nothing
