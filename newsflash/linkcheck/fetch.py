"""Fetching links: HEAD first, GET where HEAD is refused, a few at a time, each within a deadline.

httpx follows redirects (up to a limit, so a loop ends as an error) and its timeouts bound
each network step; a server that answers a byte at a time could still hold a request open, so
every fetch also runs under one overall deadline. A GET is streamed and closed at its status
line: the check needs the answer's status, not a page or a video.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx

from newsflash.linkcheck.result import LinkResult

__all__ = ["fetch_all"]

MAX_REDIRECTS = 10
# Answers to HEAD that say "not like that" rather than "gone": retried with GET. Some servers
# answer HEAD with 403 or 404 (or 400) while GET works, so every 4xx is tried again.
_HEAD_REFUSED = frozenset({405, 501})
USER_AGENT = "newsflash-link-check/1 (checks a newsletter's links before it is sent)"


def _why(status: int) -> str:
    phrase = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {phrase}".rstrip()


def _answered(url: str, response: httpx.Response) -> LinkResult:
    final = str(response.url)
    moved = final if final != url else ""
    if response.status_code < 400:
        return LinkResult(url, True, response.status_code, "", moved)
    reason = _why(response.status_code)
    if moved:
        reason = f"redirects to {final}, which answers {reason}"
    return LinkResult(url, False, response.status_code, reason, moved)


def _failed(url: str, error: Exception) -> LinkResult:
    """An exception in words a contributor can act on."""
    if isinstance(error, httpx.TooManyRedirects):
        return LinkResult(url, False, None, f"redirect loop (more than {MAX_REDIRECTS} redirects)")
    if isinstance(error, (httpx.TimeoutException, TimeoutError)):
        return LinkResult(url, False, None, "timed out: no answer in time")
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            host = httpx.URL(url).host
            return LinkResult(url, False, None, f"DNS failure: the name {host} does not resolve")
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.ConnectError):
        return LinkResult(url, False, None, f"cannot connect ({error or 'refused'})")
    if isinstance(error, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return LinkResult(url, False, None, f"not a web address httpx can fetch ({error})")
    return LinkResult(url, False, None, f"fetch failed ({type(error).__name__}: {error})")


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    async with client.stream("GET", url) as response:
        return response  # the status line and headers are enough; the body is never read


async def _fetch(client: httpx.AsyncClient, url: str, deadline: float) -> LinkResult:
    try:
        async with asyncio.timeout(deadline):
            response = await client.head(url)
            if response.status_code in _HEAD_REFUSED or 400 <= response.status_code < 500:
                response = await _get(client, url)
            return _answered(url, response)
    except (httpx.HTTPError, httpx.InvalidURL, OSError, TimeoutError) as e:
        return _failed(url, e)


async def _fetch_all(urls: list[str], timeout: float, concurrency: int) -> list[LinkResult]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # no proxy or .netrc from the environment: the link as a partner has it
    ) as client:

        async def one(url: str) -> LinkResult:
            async with limit:
                return await _fetch(client, url, timeout)

        return list(await asyncio.gather(*(one(u) for u in urls)))


def fetch_all(urls: Iterable[str], *, timeout: float, concurrency: int) -> dict[str, LinkResult]:
    """Fetch each distinct URL once, `concurrency` at a time; every URL gets a result."""
    distinct = list(dict.fromkeys(urls))
    if not distinct:
        return {}
    return {r.url: r for r in _run(_fetch_all(distinct, timeout, concurrency))}


def _run(work: Coroutine[None, None, list[LinkResult]]) -> list[LinkResult]:
    """asyncio.run, in a thread of its own where this thread already runs an event loop (a
    caller inside one, such as a sync Playwright session or an ASGI handler)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()
