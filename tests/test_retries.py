"""The one retry loop SendGrid's Mail Send and suppression lists share (transports/retries.py).

The clock and the sleep are injected, so nothing waits and no answer depends on the hour; the
requests themselves are exercised against the fake SendGrid in test_send.py and
test_suppression_sync.py.
"""

from __future__ import annotations

import pytest

from newsflash.transports.retries import (
    Policy,
    RateLimited,
    Retryable,
    printable,
    reason_text,
    with_retries,
)

POLICY = Policy(retries=2, max_rate_limit_wait=10.0, backoff=1.0, backoff_max=4.0)


class TooLong(Exception):
    pass


def run(outcomes: list[Exception | str], sleeps: list[float], now: float = 1000.0) -> str:
    calls = iter(outcomes)

    def attempt() -> str:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def too_long(waited: float, delay: float) -> Exception:
        return TooLong(f"waited {waited:g}, {delay:g} more")

    return with_retries(attempt, POLICY, sleep=sleeps.append, clock=lambda: now, too_long=too_long)


def test_a_retryable_failure_is_tried_again_with_backoff_until_it_is_answered() -> None:
    sleeps: list[float] = []
    assert run([Retryable("503"), Retryable("503"), "202"], sleeps) == "202"
    assert len(sleeps) == 2 and all(0 <= s <= POLICY.backoff_max for s in sleeps)


def test_retries_spent_reraise_the_last_reason_and_try_no_more() -> None:
    sleeps: list[float] = []
    outcomes = [Retryable("a"), Retryable("b"), Retryable("c"), "never reached"]
    with pytest.raises(Retryable) as info:
        run(outcomes, sleeps)
    assert info.value.reason == "c" and outcomes[-1] == "never reached"
    assert len(sleeps) == POLICY.retries


def test_a_429_waits_until_the_reset_and_then_starts_the_retries_afresh() -> None:
    sleeps: list[float] = []
    outcomes = [RateLimited(1004.0), Retryable("a"), Retryable("b"), "202"]
    assert run(outcomes, sleeps, now=1000.0) == "202"
    assert sleeps[0] == 4.0 and len(sleeps) == 3


def test_a_429_without_or_with_a_past_reset_waits_one_second() -> None:
    sleeps: list[float] = []
    assert run([RateLimited(None), RateLimited(5.0), "202"], sleeps) == "202"
    assert sleeps == [1.0, 1.0]


def test_a_429_that_would_wait_beyond_the_limit_in_all_raises_the_callers_error() -> None:
    sleeps: list[float] = []
    with pytest.raises(TooLong, match="waited 6, 6 more"):
        run([RateLimited(1006.0), RateLimited(1006.0), "202"], sleeps)
    assert sleeps == [6.0]  # the second wait was refused before it began


def test_a_hostile_hosts_text_is_quoted_on_one_printable_line() -> None:
    shown = printable("evil\r\nSet-Cookie: x\x1b[31m\u202e" + "y" * 300, 40)
    assert shown.isprintable() and "\n" not in shown and "\x1b" not in shown
    assert shown.endswith("...") and len(shown) == 43
    assert reason_text(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: Connection refused"
    )
    assert reason_text("bad\nreason") == "bad reason"
