"""The user's cache folder, and the rules for reading what newsflash kept there.

A kept file decides what the next command believes (a Config validated, an item parsed), so
it must be one only this user could have written: the folders are the user's own, not links
and writable by nobody else (made so when they are created), and a file is read only if it
is a regular file of the user's that nobody else may write. In a cache folder others may
write (an XDG_CACHE_HOME pointed at a shared /tmp) another user could plant a file or swap
the one being written for a link: such a folder is neither read nor written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from newsflash.files import write_atomic

_DIGEST = hashlib.sha256().digest_size


def cache_folder(*parts: str) -> Path | None:
    """`$XDG_CACHE_HOME/PARTS` (an absolute one, as the XDG spec asks), else
    `~/.cache/PARTS`; None when there is no home to find it in."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            home = Path.home()
        except RuntimeError:
            return None
        if not home.is_absolute() or home == Path("/"):  # HOME empty or unset for a service
            return None
        base = str(home / ".cache")
    return Path(base).joinpath(*parts)


def _mine(st: os.stat_result) -> bool:
    """The user's own, and writable by nobody else."""
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def private_file(fd: int) -> bool:
    """Whether the open file is the user's own and nobody else may write it."""
    st = os.fstat(fd)
    return stat.S_ISREG(st.st_mode) and _mine(st)


def private_folder(folder: Path) -> bool:
    """Whether `folder` and the folder holding it are the user's own, not links, and
    writable by nobody else, made so if they are not there yet. Folders already there are
    only looked at (two lstat calls: two mkdir calls refused took three times as long)."""
    if _private(folder):
        return True
    with contextlib.suppress(OSError):
        # One at a time: mkdir(parents=True) makes the newsflash folder with the default
        # mode, which a umask of 002 (many desktops) leaves group-writable: never private.
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
    return _private(folder)


def _private(folder: Path) -> bool:
    try:
        stats = [os.lstat(f) for f in (folder, folder.parent)]
    except OSError:
        return False
    return all(stat.S_ISDIR(st.st_mode) and _mine(st) for st in stats)


def read_private(file: Path) -> bytes | None:
    """The bytes of `file` if it is a private file of the user's (private_file); else None,
    also when it cannot be read."""
    try:
        with open(file, "rb") as f:
            if not private_file(f.fileno()):
                return None
            return f.read()
    except OSError:
        return None


def write_sealed(file: Path, payload: bytes) -> None:
    """Keep `payload` in a private file, behind its sha256, for read_sealed."""
    write_atomic(file, hashlib.sha256(payload).digest() + payload, mode=0o600)


def read_sealed(file: Path) -> bytes | None:
    """The payload write_sealed kept, if the file is private (read_private) and its bytes are
    still those it was kept with: a truncated, damaged or edited entry is None, even where
    what is left would still parse."""
    data = read_private(file)
    if data is None or hashlib.sha256(data[_DIGEST:]).digest() != data[:_DIGEST]:
        return None
    return data[_DIGEST:]


_pruned: set[tuple[Path, str]] = set()


def prune(where: Path, suffix: str, most: int) -> None:
    """Past `most` files ending in `suffix`, remove the older half (by when each was
    written), so a cache keyed by newsflash's own files does not grow with every upgrade;
    a file already gone is no matter. Once per folder and process: listing a folder of
    thousands on every kept parse was most of a warm rebuild's time for its changed item,
    and one process adds no more files than it parses."""
    if (where, suffix) in _pruned:
        return
    _pruned.add((where, suffix))
    with os.scandir(where) as found:
        names = [e.name for e in found if e.name.endswith(suffix)]
    if len(names) <= most:
        return
    dated = []
    for name in names:
        with contextlib.suppress(OSError):
            dated.append((os.stat(where / name).st_mtime_ns, name))
    for _, name in sorted(dated)[: len(dated) // 2]:
        (where / name).unlink(missing_ok=True)
