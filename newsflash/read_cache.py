"""Files and folder listings read again only when they may have changed.

A warm rebuild (the preview, the scheduler) used to list the drop folder and the templates
and read every file each time, though usually one file had changed. Here a file's bytes are
kept with its stat (device, inode, size, mtime and ctime in ns), and a listing with the stat
of every folder it walked (adding, removing or renaming an entry changes its folder's).

A stat that matches is trusted only once it is *settled*: its ctime at least MARGIN_NS
before the moment the bytes (or the listing) were read. A file written again within one tick
of the file system's clock may keep its size and times, so anything newer is read again and
the answer replaced; a write after the read always moves the ctime, which no tool can set
back (`cp -p`, `rsync -t` and `touch -d` set mtime only). Two seconds covers the coarsest
clocks (FAT, SMB). A listing that meets a symbolic link is never kept: what the link points
at changes without its folder's stat moving.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MARGIN_NS = 2_000_000_000
MOST_ENTRIES = 4096  # files and listings kept; past it the cache starts again
Stamp = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class _Kept:
    stamp: Stamp
    read_at: int  # time.time_ns() just before the stat that gave `stamp`
    data: bytes


@dataclass(frozen=True)
class _Listing:
    folders: tuple[tuple[str, Stamp], ...]
    read_at: int
    files: tuple[tuple[Path, str], ...]


_files: dict[str, _Kept] = {}
_listings: dict[str, _Listing] = {}
_lock = threading.Lock()
reads = 0  # files read from disk, for the tests and benchmarks
walks = 0  # folders listed from disk


def _stamp(path: str) -> Stamp:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _settled(stamp: Stamp, read_at: int) -> bool:
    return stamp[4] < read_at - MARGIN_NS


def _store(table: dict[str, _Kept] | dict[str, _Listing], key: str, value: object) -> None:
    with _lock:
        if len(table) >= MOST_ENTRIES:
            table.clear()
        table[key] = value  # type: ignore[assignment]


def read_bytes(path: Path) -> bytes:
    """The file's bytes, from memory while its stat is the settled one kept with them.

    Raises OSError as Path.read_bytes does (a file gone, unreadable, a folder)."""
    global reads
    key = os.fspath(path)
    kept = _files.get(key)
    if kept is not None and _settled(kept.stamp, kept.read_at) and _stamp(key) == kept.stamp:
        return kept.data
    read_at = time.time_ns()
    stamp = _stamp(key)
    data = path.read_bytes()
    reads += 1
    _store(_files, key, _Kept(stamp, read_at, data))
    return data


def files_under(folder: Path) -> tuple[tuple[Path, str], ...]:
    """Every file under `folder`, as ``sorted(p for p in folder.rglob("*") if p.is_file())``
    gives them, each with its path under the folder ('a/b.md'); () if it is not a folder.
    Kept while no folder walked has changed."""
    key = os.fspath(folder)
    kept = _listings.get(key)
    if kept is not None and _unchanged(kept):
        return kept.files
    return _walk(folder, key)


def has_linked_folder(folder: Path) -> bool:
    """Whether a folder under `folder` is a symbolic link: the listing does not walk into one,
    while Jinja2 and the item reader read through it, so such a tree cannot be hashed exactly.
    A kept listing holds no link at all, so while it is kept no walk is needed."""
    kept = _listings.get(os.fspath(folder))
    if kept is not None and _unchanged(kept):
        return False
    for root, dirs, _ in os.walk(folder):
        if any(os.path.islink(os.path.join(root, d)) for d in dirs):
            return True
    return False


def files_through_links(folder: Path) -> tuple[tuple[Path, str], ...]:
    """`files_under` as a loader that opens paths sees the folder: through its linked folders
    too, each real folder walked once (a link back up the tree ends there). Never kept: what
    a link points at changes without any stat here moving."""
    found: list[Path] = []
    walked: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            dirs.clear()
            continue
        walked.add(real)
        found += (p for p in map(Path, (os.path.join(root, n) for n in names)) if p.is_file())
    return tuple((p, p.relative_to(folder).as_posix()) for p in sorted(found))


def _unchanged(kept: _Listing) -> bool:
    try:
        return all(
            _settled(stamp, kept.read_at) and _stamp(name) == stamp for name, stamp in kept.folders
        )
    except OSError:
        return False


def _walk(folder: Path, key: str) -> tuple[tuple[Path, str], ...]:
    """List the folder from disk, stat-ing each folder before its entries are read."""
    global walks
    walks += 1
    read_at = time.time_ns()
    if not folder.is_dir():
        return ()
    folders = [(key, _stamp(key))]
    found: list[Path] = []
    linked = folder.is_symlink()
    for p in folder.rglob("*"):
        if p.is_symlink():
            linked = True
        if p.is_dir():
            folders.append((os.fspath(p), _stamp(os.fspath(p))))
        elif p.is_file():
            found.append(p)
    files = tuple((p, p.relative_to(folder).as_posix()) for p in sorted(found))
    if not linked:
        _store(_listings, key, _Listing(tuple(folders), read_at, files))
    return files
