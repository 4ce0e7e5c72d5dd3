"""Request bodies read with a limit that holds while reading, not after.

A client that announces a huge Content-Length is refused before a byte is read; one that
streams (chunked) without announcing is cut off the moment it passes the limit, so no request
can make the server hold more than the limit in memory.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body is over the limit (413)."""


class BadLength(Exception):
    """Content-Length is not a number (400)."""


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadLength(declared)
        if int(declared) > limit:
            raise BodyTooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)
