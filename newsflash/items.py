"""Item files: the contributors' interface, each file validated into an `Item` or precise
`Problem`s (item_parser.py), every bad file a problem and never an exception.

A file read again unchanged parses to the same result, so its parse is kept: in memory for
the preview and the scheduler, which rebuild whenever one file changes, and in the user's
cache folder (item_cache.py) for the next command, which then reads no YAML or Markdown.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

from newsflash import item_cache, read_cache
from newsflash.item_model import Item, LoadResult, Problem

__all__ = ["Item", "LoadResult", "Problem", "item_files", "load_items", "parse_item"]

ITEM_SUFFIXES = (".md", ".markdown")
IGNORED_NAMES = {"readme.md", "readme.markdown"}


def parse_item(data: bytes, key: str, sections: Sequence[str]) -> tuple[Item | None, list[Problem]]:
    """Validate one file's bytes; pure, so the property tests can throw anything at it, and
    so an unchanged file is answered from memory or the item cache, keyed by its bytes, name
    and the sections (Markdown parsing was most of a warm build, its imports of a cold one)."""
    item, problems = _parse_cached(data, key, tuple(sections))
    return item, list(problems)


@functools.lru_cache(maxsize=2048)
def _parse_cached(
    data: bytes, key: str, sections: tuple[str, ...]
) -> tuple[Item | None, tuple[Problem, ...]]:
    def parse() -> tuple[Item | None, tuple[Problem, ...]]:
        from newsflash import item_parser  # deferred: YAML, Markdown (~60 ms), a new file only

        item, problems = item_parser.parse(data, key, sections)
        return item, tuple(problems)

    return item_cache.kept_or(data, key, sections, parse)


def item_files(folder: Path) -> list[Path]:
    """Every candidate file under the drop folder, in a stable order."""
    return [path for path, _ in _keyed_files(folder)]


def _keyed_files(folder: Path) -> list[tuple[Path, str]]:
    """Each candidate file and its key (its path under the folder)."""
    return [
        (path, key)
        for path, key in read_cache.files_under(folder)
        if not any(part.startswith((".", "_")) for part in key.split("/"))
    ]


def load_items(
    folder: Path, sections: Sequence[str], files: Iterable[Path] | None = None
) -> LoadResult:
    """Load every item file under `folder`; bad files become problems, never exceptions."""
    items: list[Item] = []
    problems: list[Problem] = []
    failed: list[str] = []
    listed = (
        _keyed_files(folder)
        if files is None
        else [(p, p.relative_to(folder).as_posix()) for p in files]
    )
    for path, key in listed:
        if path.suffix.lower() not in ITEM_SUFFIXES:
            problems.append(
                Problem(key, "not an item file (items end in .md); ignored.", severity="warning")
            )
            continue
        if path.name.lower() in IGNORED_NAMES:
            continue
        try:
            data = read_cache.read_bytes(path)  # unchanged files from memory
        except OSError as e:
            problems.append(Problem(key, f"cannot be read ({e.strerror})."))
            failed.append(key)
            continue
        item, found = parse_item(data, key, sections)
        problems.extend(found)
        if item is None:
            failed.append(key)
        else:
            items.append(item)
    return LoadResult(tuple(items), tuple(problems), tuple(failed))
