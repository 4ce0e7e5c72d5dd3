"""Helpers for the Playwright tests: keep a page from reaching anything but this machine."""

from __future__ import annotations

from typing import Any


def local_only(page: Any) -> list[str]:
    """Abort every request that leaves the machine; return what was blocked."""
    blocked: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "file:", "data:", "about:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", handle)
    return blocked
