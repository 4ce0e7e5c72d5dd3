"""Helpers for the Playwright tests: keep a page from reaching anything but this machine."""

from __future__ import annotations

from typing import Any


def local_only(page: Any) -> list[str]:
    """Abort every request that leaves the machine; return what was blocked.

    An email's images (the logo, an edition's picture) are remote by design: they are
    aborted too, so the page shows their alt text as a client with images off does, but not
    reported; a remote stylesheet, font, script or frame still is."""
    blocked: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "file:", "data:", "about:")):
            route.continue_()
        else:
            if route.request.resource_type != "image":
                blocked.append(url)
            route.abort()

    page.route("**/*", handle)
    return blocked
