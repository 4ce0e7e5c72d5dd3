"""Parsed items kept between commands, so a cold build reads an unchanged item file without
importing or running the YAML and Markdown readers (yaml, markdown-it, nh3, email_validator:
most of a cold build's imports).

A parse is a pure function of the file's bytes, its key (the path under the drop folder), the
config's section keys and the code (items.parse_item), so an entry is named by the hash of
those four: newsflash's own files, Python and the installed libraries by
render_cache.package_fingerprint, as the config cache and the build stamp take them. An
edited item, a renamed section or an upgrade is parsed again; nothing is ever looked up by
path alone.

Where: the user's cache folder (`$XDG_CACHE_HOME/newsflash/items`, else `~/.cache/...`),
under the same rules as the config cache (user_cache: a folder made private to the user, no
links, a file read only if it is the user's and nobody else may write it); not beside the
items, where contributors write. One small JSON file an entry, behind its sha256 and written
atomically (user_cache.write_sealed); past MOST_FILES the older half is removed.

The kept form is JSON of the Item's and Problems' plain fields (text, numbers, an ISO date):
reading it runs no code. An entry is kept only if it reads back to exactly the result it
came from, and read only if every field has its declared type; a missing, unreadable,
truncated, foreign or older file is a parse, never an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from newsflash import idle_writes, user_cache
from newsflash.item_model import Item, Problem
from newsflash.render_cache import package_fingerprint

FORMAT = 2  # 2: the JSON follows its sha256 (user_cache.write_sealed)
FOLDER = ("newsflash", "items")  # under the user's cache folder
MOST_FILES = 2048
Parsed = tuple[Item | None, tuple[Problem, ...]]

# What a field may hold, by its annotation (the modules use postponed annotations): an
# annotation not named here is a field this format cannot carry, and nothing is kept.
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "Severity": (str,),
    "dt.date": (str,),  # ISO text in the file
}


def folder() -> Path | None:
    """`$XDG_CACHE_HOME/newsflash/items`, else `~/.cache/newsflash/items` (user_cache)."""
    return user_cache.cache_folder(*FOLDER)


def entry_key(data: bytes, key: str, sections: Sequence[str]) -> str:
    """What a parse depends on: the bytes, the key, the sections and the code."""
    parts = (str(FORMAT), hashlib.sha256(data).hexdigest(), key, *sections)
    text = "\0".join((*(f"{len(p)}:{p}" for p in parts), package_fingerprint()))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _encode(obj: Item | Problem) -> dict[str, Any]:
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in fields.items()}


def _decode(cls: type[Item] | type[Problem], doc: object) -> Any:
    """The object of `cls` whose fields `doc` holds, or None unless every field is there
    with its declared type."""
    fields = dataclasses.fields(cls)
    if not isinstance(doc, dict) or set(doc) != {f.name for f in fields}:
        return None
    values: dict[str, Any] = {}
    for f in fields:
        value, allowed = doc[f.name], _TYPES.get(str(f.type))
        if allowed is None or isinstance(value, bool) or not isinstance(value, allowed):
            return None
        if f.type == "dt.date":
            try:
                value = dt.date.fromisoformat(str(value))
            except ValueError:
                return None
        values[f.name] = value
    if cls is Problem and values["severity"] not in ("error", "warning"):
        return None
    return cls(**values)


def _document(entry: str, parsed: Parsed) -> dict[str, Any]:
    item, problems = parsed
    return {
        "format": FORMAT,
        "key": entry,
        "item": None if item is None else _encode(item),
        "problems": [_encode(p) for p in problems],
    }


def _result(entry: str, doc: object) -> Parsed | None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("key") != entry:
        return None
    item = None if doc.get("item") is None else _decode(Item, doc["item"])
    listed = doc.get("problems")
    if (item is None and doc.get("item") is not None) or not isinstance(listed, list):
        return None
    problems = tuple(_decode(Problem, p) for p in listed)
    return None if None in problems else (item, problems)


def _exact(a: Parsed | None, b: Parsed) -> bool:
    """Every field alike, with its type (an Item's anchor is not part of its ==)."""

    def shown(parsed: Parsed) -> list[object]:
        objs = [o for o in (parsed[0], *parsed[1]) if o is not None]
        return [(type(o), [(type(v), v) for v in vars(o).values()]) for o in objs]

    return a is not None and shown(a) == shown(b)


def get(data: bytes, key: str, sections: Sequence[str]) -> Parsed | None:
    """The kept parse of this file, or None."""
    slot = _slot(data, key, sections)
    return None if slot is None else _read(*slot)


def put(data: bytes, key: str, sections: Sequence[str], parsed: Parsed) -> None:
    """Keep a parse; one that would not read back exactly, or a folder that will not take
    it, costs the next command a parse only."""
    slot = _slot(data, key, sections)
    if slot is not None:
        _write(*slot, parsed)


def kept_or(data: bytes, key: str, sections: Sequence[str], parse: Callable[[], Parsed]) -> Parsed:
    """The kept parse of this file, else `parse()`, kept: get, then put, with the folder
    checked and the entry named once (a warm rebuild pays this for its changed item). The
    put is left to idle_writes, off the rebuild's path: this process holds the parse in
    memory, only the next one reads the file, and until it lands that one parses."""
    slot = _slot(data, key, sections)
    found = None if slot is None else _read(*slot)
    if found is not None:
        return found
    parsed = parse()
    if slot is not None:
        idle_writes.later(functools.partial(_write_checked, *slot, parsed))
    return parsed


def _slot(data: bytes, key: str, sections: Sequence[str]) -> tuple[Path, str] | None:
    """The entry's file and name, or None where there is no private folder to keep it in."""
    where = folder()
    if where is None or not user_cache.private_folder(where):
        return None
    entry = entry_key(data, key, sections)
    return where / f"{entry}.json", entry


def _read(file: Path, entry: str) -> Parsed | None:
    body = user_cache.read_sealed(file)  # None too if changed since, even if still JSON
    if body is None:
        return None
    try:
        return _result(entry, json.loads(body))
    except (ValueError, RecursionError):  # not JSON, a date that is not one, nested too deep
        return None


def _write_checked(file: Path, entry: str, parsed: Parsed) -> None:
    """_write, if the folder is still private when the write comes (it was at the read)."""
    if user_cache.private_folder(file.parent):
        _write(file, entry, parsed)


def _write(file: Path, entry: str, parsed: Parsed) -> None:
    try:
        text = json.dumps(_document(entry, parsed))
        if not _exact(_result(entry, json.loads(text)), parsed):
            return
    except (ValueError, TypeError, RecursionError):  # e.g. an int past json's 4300 digits
        return
    with contextlib.suppress(OSError):
        user_cache.write_sealed(file, text.encode())
        user_cache.prune(file.parent, ".json", MOST_FILES)
