"""Batches in flight together ([sendgrid] concurrency): exact ledger, exact progress, no one twice.

The real transport sends to the strict fake SendGrid on 127.0.0.1 from several threads; the
send loop alone writes the ledger. The sample list's ten partners go in batches of two (five
requests) with four in flight, so every test has batches waiting while others are answered.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_sendgrid import DEFAULT_API_KEY, FakeSendGrid, running_server
from test_send import AUDIENCE, ED, configure, ledger_of

from newsflash.config import load_config
from newsflash.errors import ConfigError, TransportError
from newsflash.sending.send import send_edition
from newsflash.transports.factory import make_transport


@pytest.fixture
def sg(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    with running_server(latency=0.2) as server:  # answers take a while, as the real API's do
        monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", server.url)
        yield server


def in_flight_batches(ws: Path) -> int:
    with ledger_of(load_config(ws / "config.toml")) as ledger:
        (n,) = ledger._conn.execute(
            "SELECT COUNT(*) FROM batches WHERE edition_id = ? AND state = 'in_flight'", (ED,)
        ).fetchone()
    return int(n)


def test_four_batches_are_in_flight_together_and_every_partner_gets_it_once(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = configure(workspace, batch_size=2, concurrency=4)
    seen: list[tuple[int, int, int, int]] = []

    def progress(done: int, total: int) -> None:
        with ledger_of(config) as ledger:
            st = ledger.status(ED)
        seen.append((done, total, st.accepted, in_flight_batches(workspace)))

    report = send_edition(config, ED, progress=progress)
    assert report.complete and report.requests == 5 and report.accepted_now == 10
    assert Counter(sg.all_recipients()) == Counter(AUDIENCE)
    # Four batches left before the first answer was recorded: three still in flight then.
    assert seen[0] == (2, 10, 2, 3)
    # The progress count is the ledger's, batch by batch, and ends at everyone.
    assert [s[0] for s in seen] == [2, 4, 6, 8, 10]
    assert all(done == accepted and total == 10 for done, total, accepted, _ in seen)
    assert seen[-1][3] == 0


@pytest.mark.parametrize("fault", [400, 503])
def test_a_failure_in_one_of_four_stops_new_requests_and_lets_the_other_three_settle(
    workspace: Path, sg: FakeSendGrid, fault: int
) -> None:
    config = configure(workspace, batch_size=2, concurrency=4, retries=0)
    # The first request to arrive is refused, and answered before the three others in flight,
    # so the send sees the failure before any success could let a fifth batch leave.
    sg.inject(fault, at_once=True)
    if fault == 400:
        with pytest.raises(TransportError, match="recorded as not sent; 6 of 10"):
            send_edition(config, ED)
    else:
        report = send_edition(config, ED)
        assert report.stopped.startswith("a batch failed") and report.accepted_now == 6
    with ledger_of(config) as ledger:
        st = ledger.status(ED)
    assert (st.accepted, st.failed, st.pending, st.in_flight, st.uncertain) == (6, 2, 2, 0, 0)
    assert len(sg.delivered_requests) == 3  # no fifth request after the failure
    again = send_edition(config, ED)
    assert again.complete and again.accepted_now == 4
    assert Counter(sg.all_recipients()) == Counter(AUDIENCE)


def test_a_429_pauses_every_worker_until_the_reset_not_only_the_one_it_answered(
    workspace: Path, sg: FakeSendGrid
) -> None:
    config = configure(workspace, batch_size=1, concurrency=4)
    sg.inject(429, reset_in=1)
    waits: list[tuple[float, float]] = []

    def sleep(seconds: float) -> None:
        waits.append((time.time(), seconds))
        time.sleep(seconds)

    report = send_edition(config, ED, transport=make_transport(config, sleep=sleep))
    assert report.complete and Counter(sg.all_recipients()) == Counter(AUDIENCE)
    reset = min(at + seconds for at, seconds in waits)
    early = [r for r in sg.delivered_requests if r.received_at < reset - 0.05]
    # Only the three requests already on their way when the 429 came went before the reset;
    # the other workers waited for it too, instead of each earning its own 429.
    assert len(early) == 3
    assert len(sg.request_log) == 11  # ten batches and the one retried after its 429
    assert len(waits) >= 2


@pytest.mark.parametrize("value", [0, -1, 17, "four"])
def test_a_concurrency_that_is_not_a_whole_number_from_1_to_16_is_refused_naming_the_key(
    workspace: Path, value: object
) -> None:
    with pytest.raises(ConfigError, match=r"sendgrid\.concurrency"):
        configure(workspace, concurrency=value)


def test_concurrency_1_sends_one_batch_at_a_time(workspace: Path, sg: FakeSendGrid) -> None:
    config = configure(workspace, batch_size=2, concurrency=1)
    seen: list[int] = []
    report = send_edition(
        config, ED, progress=lambda d, t: seen.append(in_flight_batches(workspace))
    )
    assert report.complete and seen == [0, 0, 0, 0, 0]
    assert sg.all_recipients() == AUDIENCE  # in list order
