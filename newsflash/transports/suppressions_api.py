"""SendGrid's suppression lists (v3 Suppressions API), read and written with the official library.

SendGrid keeps its own lists of addresses it will not mail: bounces, blocks, spam reports,
invalid emails, global unsubscribes and each unsubscribe (ASM) group's. This module only speaks
to them; what to record or push is decided in sending/suppression_sync.py.

Requests go through the Mail Send transport's client (python-http-client, never following a
redirect), capped at MAX_ANSWER_BYTES an answer: a wrong host streaming forever must not fill
the memory. Every call is idempotent (reading, adding an address twice, deleting one that is
not listed), so 5xx answers, refused connections and time-outs are all retried with backoff,
and a 429 waits for X-RateLimit-Reset up to [sendgrid] max_rate_limit_wait. What is left is one
of three errors, all naming the host and never the key: unreachable, key refused, or an answer
that is not SendGrid's.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from python_http_client import exceptions as http_errors

from newsflash.config import Config
from newsflash.errors import TransportError
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
from newsflash.transports.sendgrid_client import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    capped_client,
    check_host,
)

__all__ = [
    "LISTS",
    "MAX_ANSWER_BYTES",
    "PAGE_SIZE",
    "Pulled",
    "RemoteEntry",
    "SendGridAnswerError",
    "SendGridKeyRefused",
    "SendGridUnreachable",
    "SuppressionSyncError",
    "SuppressionsAPI",
]

PAGE_SIZE = 500  # SendGrid's maximum `limit`
MAX_ENTRIES = 2_000_000  # a host that ignores `offset` would page forever
GROUP = "group"
#: SendGrid's paged lists, by path segment under /v3/suppression/, and what each is called.
LISTS: dict[str, str] = {
    "bounces": "bounces",
    "blocks": "blocks",
    "spam_reports": "spam reports",
    "invalid_emails": "invalid emails",
    "unsubscribes": "global unsubscribes",
}
_DETAIL_FIELDS = ("status", "reason", "ip")
KEY_HELP = (
    "give SENDGRID_API_KEY an API key with the 'Suppressions' permission, full access "
    "(SendGrid: Settings > API Keys; README.md, 'Keeping the lists in step with SendGrid')"
)


class SuppressionSyncError(TransportError):
    """SendGrid's suppression lists could not be read or written; nothing local was changed."""


class SendGridUnreachable(SuppressionSyncError):
    """No usable answer: refused, timed out, 5xx or rate-limited beyond the wait (try later)."""


class SendGridKeyRefused(SuppressionSyncError):
    """401/403: the key is wrong, revoked, or lacks the Suppressions permission."""


class SendGridAnswerError(SuppressionSyncError):
    """An answer SendGrid's API does not give: a redirect, another status, a body of the wrong
    shape. The host is most likely not SendGrid's API (a proxy, a typo in [sendgrid] host)."""


@dataclass(frozen=True)
class RemoteEntry:
    """One address on one of SendGrid's lists; `created` is None where SendGrid gives none."""

    email: str
    created: int | None
    detail: str


@dataclass
class Pulled:
    """One list read whole; entries that could not be used are `problems`, not dropped silently."""

    entries: list[RemoteEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class SuppressionsAPI:
    """SendGrid's suppression lists on one host; see the module docstring for the answers."""

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        retries: int = 4,
        max_rate_limit_wait: float = 120.0,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = check_host(host, "the SendGrid host")
        self.policy = Policy(timeout, retries, max_rate_limit_wait, backoff, backoff_max)
        self.page_size = max(1, min(PAGE_SIZE, page_size))
        self._sleep = sleep
        self._clock = clock
        self._root = capped_client(api_key, self.host, timeout)

    def __repr__(self) -> str:
        return f"SuppressionsAPI(host={self.host!r}, api_key=<redacted>)"

    @classmethod
    def from_config(
        cls,
        config: Config,
        api_key: str,
        *,
        host: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        page_size: int = PAGE_SIZE,
    ) -> SuppressionsAPI:
        """As config.toml [sendgrid] says (timeout, retries, rate-limit wait); `host` wins."""
        sg = config.model.sendgrid
        return cls(
            api_key,
            host=host or sg.host,
            timeout=sg.timeout,
            retries=sg.retries,
            max_rate_limit_wait=sg.max_rate_limit_wait,
            page_size=page_size,
            sleep=sleep,
            clock=clock,
        )

    # -- reading -------------------------------------------------------------------------------

    def pull(self, name: str) -> Pulled:
        """Every entry of a paged list (`LISTS`), page after page until a short one."""
        pulled = Pulled()
        offset = 0
        while True:
            query = {"limit": self.page_size, "offset": offset}
            page = self._call("GET", ["suppression", name], 200, query=query)
            what = f"SendGrid's {LISTS[name]} (offset {offset})"
            if not isinstance(page, list) or len(page) > self.page_size:
                raise self._bad_answer(
                    f"GET /v3/suppression/{name}",
                    f"not a JSON array of at most {self.page_size} entries",
                )
            for position, item in enumerate(page):
                entry = _entry(item)
                if isinstance(entry, str):
                    pulled.problems.append(f"{what}, entry {position + 1}: {entry}")
                else:
                    pulled.entries.append(entry)
            offset += len(page)
            if len(page) < self.page_size:
                return pulled
            if offset >= MAX_ENTRIES:
                raise self._bad_answer(
                    f"GET /v3/suppression/{name}", f"more than {MAX_ENTRIES:,} entries"
                )

    def pull_group(self, group_id: int) -> Pulled:
        """The addresses of ASM group `group_id` (one answer: SendGrid does not page it)."""
        segments = ["asm", "groups", str(group_id), "suppressions"]
        emails = self._call("GET", segments, 200)
        where = f"GET /v3/asm/groups/{group_id}/suppressions"
        if not isinstance(emails, list):
            raise self._bad_answer(where, "not a JSON array of addresses")
        pulled = Pulled()
        for position, email in enumerate(emails):
            if isinstance(email, str) and email.strip():
                pulled.entries.append(RemoteEntry(email, None, f"ASM group {group_id}"))
            else:
                pulled.problems.append(
                    f"SendGrid's ASM group {group_id}, entry {position + 1}: not an address "
                    f"({printable(json.dumps(email), 80)})"
                )
        return pulled

    # -- writing -------------------------------------------------------------------------------

    def add_global(self, emails: Sequence[str]) -> None:
        body = {"recipient_emails": list(emails)}
        self._call("POST", ["asm", "suppressions", "global"], 201, body=body)

    def add_to_group(self, group_id: int, emails: Sequence[str]) -> None:
        body = {"recipient_emails": list(emails)}
        self._call("POST", ["asm", "groups", str(group_id), "suppressions"], 201, body=body)

    def remove(self, name: str, email: str, group_id: int | None = None) -> None:
        """Take `email` off list `name` (a `LISTS` key, or "group" with `group_id`)."""
        segment = quote(email, safe="@")
        if name == GROUP:
            path = ["asm", "groups", str(group_id), "suppressions", segment]
        elif name == "unsubscribes":
            path = ["asm", "suppressions", "global", segment]
        else:
            path = ["suppression", name, segment]
        self._call("DELETE", path, 204)

    # -- one request ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        segments: list[str],
        expected: int,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """The parsed JSON answer (None when empty), after retries and rate-limit waits."""
        where = f"{method} /v3/{'/'.join(segments)}"
        policy = self.policy

        def too_long(waited: float, delay: float) -> SendGridUnreachable:
            return SendGridUnreachable(
                f"SendGrid's rate limit (429) at {self.host} would need a wait of "
                f"{math.ceil(delay)} s more, beyond [sendgrid] max_rate_limit_wait = "
                f"{policy.max_rate_limit_wait:g} s ({where}); run the sync again later.",
                status=429,
            )

        try:
            return with_retries(
                lambda: self._once(method, segments, expected, query, body, where),
                policy,
                sleep=self._sleep,
                clock=self._clock,
                too_long=too_long,
            )
        except Retryable as e:
            raise SendGridUnreachable(
                f"SendGrid could not be reached at {self.host}: {e.reason} ({where}, "
                f"{policy.retries + 1} attempts). Check the network and [sendgrid] host in "
                "config.toml (or NEWSFLASH_SENDGRID_HOST), then run the sync again.",
            ) from None

    def _once(
        self,
        method: str,
        segments: list[str],
        expected: int,
        query: dict[str, Any] | None,
        body: Any,
        where: str,
    ) -> Any:
        client = self._root
        for segment in segments:
            client = client._(segment)
        call = getattr(client, method.lower())
        try:
            response = call(request_body=body, query_params=query)
        except http_errors.HTTPError as e:
            raise self._refused(int(e.status_code), e.headers, text_of(e.body), where) from None
        except AnswerTooLarge:
            raise self._bad_answer(where, f"an answer over {MAX_ANSWER_BYTES:,} bytes") from None
        except urllib.error.URLError as e:
            raise Retryable(reason_text(e.reason)) from None
        except TimeoutError:
            raise Retryable(f"no answer within {self.policy.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as e:
            raise Retryable(f"the connection broke ({type(e).__name__})") from None
        status = int(response.status_code)
        if status != expected:
            location = response.headers.get("Location") if response.headers else None
            raise self._not_api(status, location, where)
        raw = response.body
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise self._bad_answer(where, "an answer that is not JSON") from None

    def _refused(self, status: int, headers: Any, body: str, where: str) -> Exception:
        if status == 429:
            return RateLimited(as_float(headers.get("X-RateLimit-Reset") if headers else None))
        if status >= 500:
            return Retryable(f"{status} {phrase(status)}")
        if status == 401:
            return SendGridKeyRefused(
                f"SendGrid at {self.host} refused the API key (401 Unauthorized; {where}): "
                f"{KEY_HELP}.",
                status=status,
                body=body,
            )
        if status == 403:
            return SendGridKeyRefused(
                f"SendGrid at {self.host} refused the request (403 Forbidden; {where}): the key "
                f"lacks a permission; {KEY_HELP}.",
                status=status,
                body=body,
            )
        if status < 400:
            location = headers.get("Location") if headers else None
            return self._not_api(status, location, where)
        return SendGridAnswerError(
            f"SendGrid at {self.host} answered {status} {phrase(status)} to {where} "
            f"({_error_text(body)}). "
            + (
                "Check [sendgrid] asm_group_id in config.toml: SendGrid has no such group."
                if "/asm/groups/" in where and status == 404
                else "Check [sendgrid] host in config.toml (or NEWSFLASH_SENDGRID_HOST)."
            ),
            status=status,
            body=body,
        )

    def _not_api(self, status: int, location: object, where: str) -> SendGridAnswerError:
        to = f" (redirecting to {printable(str(location))})" if location else ""
        return SendGridAnswerError(
            f"{self.host} answered {status} {phrase(status)}{to} to {where}, which SendGrid's "
            "API never does: the host is not SendGrid's API. Check [sendgrid] host in "
            "config.toml (or NEWSFLASH_SENDGRID_HOST): https://api.sendgrid.com, or "
            "https://api.eu.sendgrid.com for EU data residency.",
            status=status,
        )

    def _bad_answer(self, where: str, what: str) -> SendGridAnswerError:
        return SendGridAnswerError(
            f"{self.host} gave {what} to {where}, which SendGrid's API does not: nothing from "
            "it was recorded. Check [sendgrid] host in config.toml (or "
            "NEWSFLASH_SENDGRID_HOST) and run the sync again."
        )


def _entry(item: object) -> RemoteEntry | str:
    """An entry of a paged list, or what is wrong with it (the secretariat reads it)."""
    if not isinstance(item, dict):
        return f"not an object ({printable(json.dumps(item), 80)})"
    email = item.get("email")
    if not isinstance(email, str) or not email.strip():
        return f"no address in 'email' ({printable(json.dumps(item), 120)})"
    created = item.get("created")
    when: int | None = None
    if isinstance(created, int | float) and not isinstance(created, bool) and 0 <= created < 1e11:
        when = int(created)
    detail = " ".join(
        printable(str(item[k]), 200) for k in _DETAIL_FIELDS if isinstance(item.get(k), str)
    )
    return RemoteEntry(email, when, detail)


def _error_text(body: str) -> str:
    try:
        errors = json.loads(body).get("errors")
        messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        messages = []
    return printable("; ".join(m for m in messages if m) or body.strip() or "no details", 300)


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")
