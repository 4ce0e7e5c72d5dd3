"""Rendered emails kept in the user's cache folder as well as in state/render-cache, so a first
build of an edition this machine has rendered before (state/ removed, a fresh clone of the
workspace) neither renders it nor imports the renderer: Jinja2, mjml-python, premailer,
cssutils and lxml were most of such a build's second.

An entry is named by the render cache's key (render_cache.render_key: the whole context the
templates receive, every template file, the rendering code, Python and the libraries), so it
holds what rendering those inputs gives, wherever the workspace lies; a first build that finds
one writes it to state/render-cache too, as if it had rendered it. state/render-cache is read
first. Where: `$XDG_CACHE_HOME/newsflash/emails` (else `~/.cache/...`), under the rules of the
config, item and template caches (user_cache: a folder private to the user, no links, a file
read only if it is the user's and nobody else may write it). An entry is JSON, never code,
behind its sha256 (user_cache.write_sealed), so a truncated, damaged, foreign or edited one is
a render, never an error.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from newsflash import user_cache
from newsflash.render_cache import DiskCache, email_document, email_parts

FOLDER = ("newsflash", "emails")  # under the user's cache folder
MOST_FILES = 64  # a few editions, each with its web version, and their rebuilds (~100 KB each)


def _file(key: str) -> Path | None:
    folder = user_cache.cache_folder(*FOLDER)
    if folder is None or not user_cache.private_folder(folder):
        return None
    return folder / f"{key}.email"


class KeptEmails(DiskCache):
    """state/render-cache, then the user's cache folder; a render is kept in both."""

    def get(self, key: str) -> dict[str, str] | None:
        parts = super().get(key)
        if parts is not None:
            return parts
        file = _file(key)
        data = None if file is None else user_cache.read_sealed(file)
        parts = None if data is None else email_parts(data, key)
        if parts is not None:
            super().put(key, parts)
        return parts

    def put(self, key: str, parts: dict[str, str]) -> None:
        super().put(key, parts)
        file = _file(key)
        if file is None:
            return
        with contextlib.suppress(OSError):  # a folder that will not take it costs speed only
            user_cache.write_sealed(file, email_document(key, parts).encode())
            user_cache.prune(file.parent, ".email", MOST_FILES)
