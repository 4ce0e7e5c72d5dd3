"""How newsflash talks to SendGrid's API when it does not answer well: one loop for all of it.

Mail Send (sendgrid_delivery.py) and the suppression lists (suppressions_api.py) wait and retry
the same way: an attempt that raises Retryable (an answer proving nothing was taken, a request
that never fully left; each caller says which answers those are) is tried
again with exponential backoff and jitter, up to `retries` more times; one that raises
RateLimited (429) waits until X-RateLimit-Reset, at most `max_rate_limit_wait` seconds in all
for one call. What an answer means is each caller's; here are only the waiting and the plain
text helpers that quote an untrusted host in messages.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

__all__ = [
    "Policy",
    "RateLimited",
    "Retryable",
    "as_float",
    "phrase",
    "printable",
    "reason_text",
    "text_of",
    "with_retries",
]

T = TypeVar("T")

_UNPRINTABLE = re.compile(r"[^ -~]")


@dataclass(frozen=True)
class Policy:
    """How long to wait for an answer, and how often and how long to try again."""

    timeout: float = 30.0
    retries: int = 4
    max_rate_limit_wait: float = 120.0
    backoff: float = 1.0
    backoff_max: float = 30.0


class Retryable(Exception):
    """SendGrid did not take the request (e.g. 500/503, or the request never fully left)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RateLimited(Exception):
    """429: try again once X-RateLimit-Reset (epoch seconds, if SendGrid gave it) has passed."""

    def __init__(self, reset_at: float | None) -> None:
        super().__init__("429 Too Many Requests")
        self.reset_at = reset_at


def with_retries(
    attempt: Callable[[], T],
    policy: Policy,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    too_long: Callable[[float, float], Exception],
) -> T:
    """`attempt()`'s answer, retried and rate-limit-waited as the module docstring says.

    Retryable is re-raised once the retries are spent; `too_long(waited, delay)` is raised
    when a 429 would need more waiting than the policy allows. `sleep` and `clock` are
    injected so tests wait for nothing.
    """
    waited = 0.0
    while True:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Retryable),
            stop=tenacity.stop_after_attempt(policy.retries + 1),
            wait=tenacity.wait_random_exponential(
                multiplier=policy.backoff, max=policy.backoff_max
            ),
            sleep=sleep,
            reraise=True,
        )
        try:
            result: T = retrying(attempt)
        except RateLimited as e:
            delay = 1.0 if e.reset_at is None else max(1.0, e.reset_at - clock())
            if waited + delay > policy.max_rate_limit_wait:
                raise too_long(waited, delay) from None
            sleep(delay)
            waited += delay
            continue
        return result


def printable(text: str, limit: int = 200) -> str:
    """A value from a host we do not trust, safe to print on one terminal line."""
    text = _UNPRINTABLE.sub("?", " ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."


def text_of(body: object) -> str:
    """An answer's body as text, whatever type the library handed it over as."""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return "" if body is None else str(body)


def as_float(value: object) -> float | None:
    """A header such as X-RateLimit-Reset as a number, or None when it is not one."""
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status ("" for one HTTP does not name)."""
    return http.client.responses.get(status, "")


def reason_text(reason: object) -> str:
    """Why a connection failed (urllib's `reason`), without a traceback's noise."""
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    if isinstance(reason, BaseException):
        return type(reason).__name__
    return printable(str(reason))
