"""Posting a Mail Send body to SendGrid: HTTP through the official library, retries, answers.

What an answer means, and so what the ledger may record:

* 202 Accepted (200 OK in sandbox mode): accepted (SendGrid's X-Message-Id kept to trace
  complaints). Nothing else is: the API answers Mail Send with nothing else.
* A redirect (3xx) is never followed. urllib would follow a 301/302/303 as a GET, carrying the
  Authorization header to wherever it points, and take that page's 200 for an accepted send:
  a wrong `host` or a captive proxy would mark the whole list as reached. A 3xx, or any 2xx
  SendGrid does not give (200 outside sandbox mode, 201, 203, 204...), means the host is not
  SendGrid's Mail Send: nothing was handed to SendGrid; TransportError naming the host.
* A 202 to a sandbox-mode request: SendGrid did not apply sandbox mode and may have delivered
  the mail for real, so the batch is uncertain (see below), not failed: a re-run would send it
  again.
* Another 1xx than 100 Continue (which http.client skips): the final answer, which may well
  be 202, follows it but http.client cannot read past it; uncertain.
* 429: not accepted; wait until X-RateLimit-Reset (at most ``max_rate_limit_wait`` seconds in
  all for one batch) and try again; a longer wait stops the send with a TransportError.
* 500 Internal Server Error and 503 Service Unavailable, or a connection that failed before the
  request was fully written (refused, reset while sending): not accepted; retried with
  exponential backoff and jitter, ``retries`` times. 500 is the one 5xx SendGrid's Mail Send
  spec describes (with its error body), and RFC 9110 gives 500 and 503 to the server that did
  not fulfil the request; the body is not required, because a proxy's own 500/503 page also
  means nothing was forwarded.
* 400/401/403/413/other 4xx: not accepted and a retry would not help; TransportError.
  (307/308 and 3xx alike, above.)
* Every other 5xx (502 Bad Gateway, 504 Gateway Timeout, a CDN's 520/524...): the answer of a
  gateway that may have forwarded the request to SendGrid, which may have taken it. Like a
  time-out or a dropped connection *after* the request was written, the batch is reported
  ``uncertain`` and NOT retried here: retrying could send the edition twice to a thousand
  partners, and newsflash's first rule is that no one is sent twice. SendGrid's events settle
  most uncertain recipients by themselves (sending/settle.py); `newsflash send
  --resend-uncertain` resends the rest on request, after a wait.

Every TransportError raised here therefore means "this request was not accepted", which is what
lets the caller record the batch as failed and retry it on the next run.

The API key is never printed or logged: it is kept out of reprs and error messages, and the
library's debug log (which would print the Authorization header) is silenced (sendgrid_client).
"""

from __future__ import annotations

import http.client
import json
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from python_http_client import exceptions as http_errors

from newsflash.errors import TransportError
from newsflash.personalise import Person
from newsflash.transports.retries import (
    Policy,
    RateLimited,
    Retryable,
    as_float,
    phrase,
    printable,
    reason_text,
    text_of,
    with_retries,
)
from newsflash.transports.sendgrid_client import KEY_HELP, check_host, make_client
from newsflash.transports.sendgrid_payload import JSON

__all__ = [
    "MAIL_SEND",
    "Answer",
    "Delivery",
    "Policy",
    "Retryable",
    "Uncertain",
]

MAIL_SEND = "POST /v3/mail/send"
#: The 5xx answers that prove the request was not taken (the module docstring says why).
_NOT_TAKEN = frozenset({500, 503})


class Uncertain(Exception):
    """The request was written but no answer came: it may have been accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    status: int
    message_id: str | None
    requests: int


class Delivery:
    """Posts bodies to one host with one key; see the module docstring for what answers mean."""

    def __init__(
        self,
        api_key: str,
        host: str,
        policy: Policy,
        *,
        sandbox: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = check_host(host, "the SendGrid host")
        self.policy = policy
        self.sandbox = sandbox
        self._sleep = sleep
        self._clock = clock
        # Batches go out from several threads at once ([sendgrid] concurrency): what belongs
        # to one request (its attempts, whether it has left) is the calling thread's own.
        self._mine = threading.local()
        # A 429 pauses every thread until the reset, not just the one it answered.
        self._pause_lock = threading.Lock()
        self._paused_until = 0.0
        self._paused_by: int | None = None
        self._client = make_client(api_key, self.host, policy.timeout)
        self._mail_send = self._client.client.mail.send  # the library builds it per attribute

    @property
    def request_outstanding(self) -> bool:
        """This thread's request has left and its answer has not come."""
        return bool(getattr(self._mine, "outstanding", False))

    @property
    def attempts(self) -> int:
        """Requests this thread's last `deliver` made."""
        return int(getattr(self._mine, "attempts", 0))

    def __repr__(self) -> str:  # the default repr would be harmless, but say so explicitly
        return f"Delivery(host={self.host!r}, api_key=<redacted>)"

    def deliver(self, payload: JSON | bytes, batch: Sequence[Person] = ()) -> Answer:
        """Post until accepted; 429s wait, 500/503/refused connections back off and retry
        (transports/retries.py). `batch` only names partners in a 400's errors; `payload`
        as bytes is the body already encoded (`Payloads.body`)."""
        self._mine.attempts = 0
        self._mine.batch = batch
        status, message_id = with_retries(
            lambda: self._post_once(payload),
            self.policy,
            sleep=self._sleep,
            clock=self._clock,
            too_long=self._too_long,
        )
        return Answer(status, message_id, self.attempts)

    def _too_long(self, waited: float, delay: float) -> TransportError:
        limit = self.policy.max_rate_limit_wait
        return TransportError(
            f"SendGrid's rate limit (429) would need a wait of {math.ceil(delay)} s "
            f"more (after {waited:.0f} s), beyond [sendgrid] max_rate_limit_wait "
            f"= {limit:g} s; this batch was not sent. Run the "
            "same send again later: it resumes where it stopped.",
            status=429,
        )

    def _post_once(self, payload: JSON | bytes) -> tuple[int, str | None]:
        self._wait_out_pause()
        mine = self._mine
        mine.attempts += 1
        mine.outstanding = True
        try:
            answer = self._post_and_read(payload)
        except (KeyboardInterrupt, SystemExit):
            raise  # stopped while waiting for the answer: the batch stays in doubt
        except RateLimited as e:
            mine.outstanding = False
            self._pause(e.reset_at)
            raise
        except BaseException:
            mine.outstanding = False
            raise
        mine.outstanding = False
        self._end_own_pause()
        return answer

    def _end_own_pause(self) -> None:
        """The thread whose 429 paused the others has been answered after its wait: the
        window reset, so the pause ends (without this, a batch sent next from another thread
        would wait out a reset that had already come, by the clock of a wait it never saw)."""
        with self._pause_lock:
            if self._paused_by == threading.get_ident():
                self._paused_until, self._paused_by = 0.0, None

    def _pause(self, reset_at: float | None) -> None:
        """Hold the other threads' next requests until the reset; the thread that got the
        429 waits in the retry loop, which also keeps its [sendgrid] max_rate_limit_wait."""
        until = self._clock() + 1.0 if reset_at is None else reset_at
        with self._pause_lock:
            if until > self._paused_until:
                self._paused_until, self._paused_by = until, threading.get_ident()

    def _wait_out_pause(self) -> None:
        with self._pause_lock:
            until, by = self._paused_until, self._paused_by
        if by != threading.get_ident():
            delay = until - self._clock()
            if delay > 0:
                self._sleep(delay)

    def _post_and_read(self, payload: JSON | bytes) -> tuple[int, str | None]:
        try:
            response = self._mail_send.post_json(payload)
        except http_errors.HTTPError as e:
            self._refused(e)
        except urllib.error.URLError as e:
            # urllib wraps only errors raised while connecting or writing the request, so the
            # request never fully left and SendGrid cannot have accepted it.
            raise Retryable(f"could not reach {self.host} ({reason_text(e.reason)})") from None
        except TimeoutError:
            raise Uncertain(
                f"no answer from SendGrid within {self.policy.timeout:g} s after the request "
                "was sent"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            raise Uncertain(
                f"the connection broke after the request was sent ({type(e).__name__})"
            ) from None
        status = int(response.status_code)
        headers = response.headers
        self._check_accepted(status, headers)
        message_id = headers.get("X-Message-Id") if headers is not None else None
        return status, message_id

    def _check_accepted(self, status: int, headers: Any) -> None:
        """A 2xx is accepted only if it is the one SendGrid gives for this request."""
        expected = 200 if self.sandbox else 202
        if status == expected:
            return
        if self.sandbox and status == 202:
            raise Uncertain(
                f"{self.host} answered 202 Accepted to a sandbox-mode request, so SendGrid may "
                "have delivered it for real; look the partners up in SendGrid's Activity feed"
            )
        raise self._not_mail_send(status, headers)

    def _not_mail_send(self, status: int, headers: Any, body: str = "") -> TransportError:
        """The error for an answer that SendGrid's Mail Send never gives: the host is wrong."""
        location = headers.get("Location") if headers is not None else None
        where = f" (redirecting to {printable(str(location))})" if location else ""
        expected = "200 OK in sandbox mode" if self.sandbox else "202 Accepted"
        return TransportError(
            f"{self.host} answered {status} {phrase(status)}{where}, where SendGrid's Mail "
            f"Send answers {expected}: nothing was handed to SendGrid, so this batch is "
            "recorded as not sent. Check [sendgrid] host in config.toml or "
            f"NEWSFLASH_SENDGRID_HOST (now {self.host}): SendGrid's API is "
            "https://api.sendgrid.com (EU data residency: https://api.eu.sendgrid.com), "
            "reached with no proxy redirecting or answering in its place.",
            status=status,
            body=body,
        )

    def _refused(self, e: http_errors.HTTPError) -> NoReturn:
        """Raise what SendGrid's error answer means for this batch."""
        status = int(e.status_code)
        body = text_of(e.body)
        headers = e.headers
        if status < 200:
            raise Uncertain(
                f"{self.host} answered {status} {phrase(status)}, an interim answer: the final "
                "one (perhaps 202 Accepted) could not be read"
            )
        if status < 400:
            raise self._not_mail_send(status, headers, body)
        if status == 429:
            raise RateLimited(as_float(headers.get("X-RateLimit-Reset") if headers else None))
        if status in _NOT_TAKEN:
            raise Retryable(f"SendGrid answered {status} {phrase(status)}")
        if status >= 500:
            raise Uncertain(
                f"{self.host} answered {status} {phrase(status)}".rstrip()
                + ", a gateway's answer that may follow a request SendGrid accepted"
            )
        raise self._client_error(status, body)

    def _client_error(self, status: int, body: str) -> TransportError:
        """A 4xx: SendGrid took nothing of the request, and sending it again would not help."""
        if status == 401:
            text = f"SendGrid refused the API key (401 Unauthorized): {KEY_HELP}."
        elif status == 403:
            text = (
                "SendGrid refused the request (403 Forbidden): the API key lacks permission. "
                f"{KEY_HELP[0].upper()}{KEY_HELP[1:]}."
            )
        elif status == 400:
            text = (
                "SendGrid refused the request (400 Bad Request); nothing in it was sent:\n"
                + "\n".join(
                    f"  - {line}" for line in _error_lines(body, getattr(self._mine, "batch", ()))
                )
            )
        elif status == 413:
            text = (
                "SendGrid refused the request as too large (413); lower [sendgrid] batch_size "
                "in config.toml or shrink the email."
            )
        else:
            lines = "; ".join(_error_lines(body))
            text = (
                f"{self.host} answered {status} {phrase(status)} ({lines}) to {MAIL_SEND}; "
                f"check [sendgrid] host in config.toml or NEWSFLASH_SENDGRID_HOST (now "
                f"{self.host})."
            )
        return TransportError(text, status=status, body=body)


_PERSONALIZATION = re.compile(r"personalizations\.(\d+)\b")


def _error_lines(body: str, batch: Sequence[Person] = ()) -> list[str]:
    """SendGrid's `errors` array as 'field: message' lines (the raw body when it isn't one).

    A field inside a personalization is followed by the partner's address, so the secretariat
    can find the row in subscribers.csv.
    """
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        errors = None
    if not isinstance(errors, list) or not errors:
        return [printable(body.strip(), 300) or "(no details given)"]
    lines = []
    for item in errors:
        if not isinstance(item, dict):
            continue
        field = item.get("field")
        message = str(item.get("message", "")).strip()
        if isinstance(field, str) and (m := _PERSONALIZATION.match(field)):
            index = int(m.group(1))
            if index < len(batch):
                field = f"{field} ({batch[index].email})"
        lines.append(f"{field}: {message}" if field else message)
    return lines or ["(no details given)"]
