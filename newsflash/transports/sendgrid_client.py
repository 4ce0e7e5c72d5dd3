"""The official sendgrid library, wired so that nothing it does can fake an accepted send.

Its client never follows a redirect (urllib would follow a 302 as a GET and take the page's 200
for an accepted send), never logs the Authorization header, and waits at most `timeout` for an
answer (the library waits forever by default). The key and the host are checked before use,
and an error about the key never repeats it.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from typing import Any, Self

from python_http_client import Client as HTTPClient
from python_http_client.client import Response
from sendgrid import SendGridAPIClient

from newsflash.errors import NewsflashError

__all__ = [
    "KEY_HELP",
    "MAX_ANSWER_BYTES",
    "AnswerTooLarge",
    "capped_client",
    "check_api_key",
    "check_host",
    "make_client",
]

MAX_ANSWER_BYTES = 8_000_000  # a page of 500 suppressions is ~150 KB; far more is not SendGrid

README_KEY_HELP = "README.md, 'Sending for real'"
KEY_HELP = (
    "set SENDGRID_API_KEY in the environment to an API key with the 'Mail Send' permission "
    f"(SendGrid: Settings > API Keys; see {README_KEY_HELP})"
)

_PRINTABLE_KEY = re.compile(r"[!-~]+")

# python-http-client logs every request's headers (the Authorization header included) at DEBUG.
logging.getLogger("python_http_client").setLevel(logging.WARNING)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into the HTTPError it is, instead of a new request elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _NoRedirectClient(HTTPClient):  # type: ignore[misc]
    """python-http-client's Client, whose requests never follow a redirect.

    The library builds a fresh default opener (redirects followed) for every request and a
    fresh `Client` for every path segment, so both seams are overridden: `_make_request` is
    the one the library documents as its hook, `_build_client` keeps the segments ours.
    """

    def _build_client(self, name: str | None = None) -> Self:
        """Each path segment gets a client of this same class, subclasses included."""
        url_path = [*self._url_path, name] if name else self._url_path
        return type(self)(
            host=self.host,
            version=self._version,
            request_headers=self.request_headers,
            url_path=url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
        )

    def _make_request(
        self, opener: object, request: urllib.request.Request, timeout: float | None = None
    ) -> Any:
        # Built per request as the library does, so proxy settings are read as it reads them.
        opener = urllib.request.build_opener(_RefuseRedirects)
        return super()._make_request(opener, request, timeout)

    def post_json(self, body: object) -> Response:
        """POST `body` as JSON to this client's path, as `client.<path>.post(request_body=body)`
        does (the same URL, headers, encoding, errors and Response), minus the library's
        debug lines: it formats the whole body into a string for them even with its log
        off, a repr of ~800 KB per 1000-partner request (a tenth of a send's client time).
        Bytes are the JSON already encoded."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        headers = {**self.request_headers, "Content-Type": "application/json"}
        request = urllib.request.Request(
            self._build_url(None), headers=headers, data=data, method="POST"
        )
        return Response(self._make_request(None, request))


class AnswerTooLarge(Exception):
    """A successful answer longer than the client's cap: not SendGrid, and never read whole."""


class _CappedAnswer:
    """The urllib response as python-http-client reads it, refusing more than `cap` bytes."""

    def __init__(self, response: Any, cap: int) -> None:
        self._response = response
        self._cap = cap

    def getcode(self) -> int:
        return int(self._response.getcode())

    def info(self) -> Any:
        return self._response.info()

    def read(self) -> bytes:
        try:
            data: bytes = self._response.read(self._cap + 1)
        finally:
            self._response.close()
        if len(data) > self._cap:
            raise AnswerTooLarge
        return data


class _CappedClient(_NoRedirectClient):
    """The no-redirect client, whose successful answers are read at most `cap` long: a wrong
    host streaming forever must not fill the memory."""

    cap = MAX_ANSWER_BYTES

    def _make_request(
        self, opener: object, request: urllib.request.Request, timeout: float | None = None
    ) -> Any:
        return _CappedAnswer(super()._make_request(opener, request, timeout), self.cap)


def check_api_key(key: str) -> str:
    """The key as it must go into a header; the error never repeats it."""
    key = key.strip()
    if not key:
        raise NewsflashError(f"SENDGRID_API_KEY is empty: {KEY_HELP}.")
    if not _PRINTABLE_KEY.fullmatch(key):
        raise NewsflashError(
            "SENDGRID_API_KEY contains spaces, line breaks or non-ASCII characters, so it "
            f"cannot be a SendGrid key; copy it again. ({KEY_HELP}.)"
        )
    return key


def check_host(host: str, where: str) -> str:
    host = host.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+", host):
        raise NewsflashError(
            f"{where} = {host!r} is not an API host; write e.g. https://api.sendgrid.com "
            "(or https://api.eu.sendgrid.com for EU data residency), without a path."
        )
    return host


def make_client(api_key: str, host: str, timeout: float) -> SendGridAPIClient:
    """The library's client for `host`, with a checked key, no redirects and a timeout."""
    client = SendGridAPIClient(api_key=check_api_key(api_key), host=host)
    client.client = _NoRedirectClient(
        host=host,
        request_headers=client.client.request_headers,
        version=3,
        timeout=timeout,
    )
    return client


def capped_client(api_key: str, host: str, timeout: float) -> HTTPClient:
    """A bare client for `host` (paths by attribute, as the library's), with a checked key, no
    redirects, a timeout and answers capped at MAX_ANSWER_BYTES (AnswerTooLarge)."""
    library = SendGridAPIClient(api_key=check_api_key(api_key), host=host)
    return _CappedClient(
        host=host,
        request_headers=library.client.request_headers,
        version=3,
        timeout=timeout,
    )
