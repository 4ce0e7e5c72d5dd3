"""File names from free text, writing files so that readers never see half of one, and lock
files that name their holder."""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path

from newsflash.errors import NewsflashError

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str, *, limit: int | None = None, empty: str = "item") -> str:
    """Lower-case letters and digits joined by '-', at most `limit` of them: whatever a
    contributor typed becomes safe in a file name, a URL and an HTML id alike."""
    return _NOT_SLUG.sub("-", text.lower()).strip("-")[:limit] or empty


def write_atomic(
    path: Path, data: bytes | str, *, mode: int = 0o644, durable: bool = False
) -> None:
    """Write via a temporary file and rename: a crash, a mail client or a web server never sees
    a half-written file. mkstemp makes files private, so the mode is set explicitly. `durable`
    also survives a power cut (data synced before the rename, the folder after it): for files
    that are the only copy of something, such as the partner list."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        if durable:
            _sync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LockHeld(NewsflashError):
    """Another process holds the lock; `holder` is the pid it wrote, or "unknown". Callers
    turn it into their own words (a send or a scheduler already running)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by pid {holder}")
        self.path = path
        self.holder = holder


def lock_exclusive(path: Path) -> int:
    """Take an exclusive, non-blocking flock on `path` (created if need be), write our pid into
    it and return its descriptor; raise LockHeld if another process has it.

    The kernel drops an flock the instant its process dies, even by SIGKILL, so a crash never
    leaves a stale lock. Give the descriptor back with `unlock`."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LockHeld(path, holder) from None
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        unlock(fd)
        raise
    return fd


def unlock(fd: int) -> None:
    """Clear the pid and close, which drops the flock. The file itself stays: deleting it would
    let a newcomer lock a fresh inode while a waiter still holds the old one, and two holders is
    exactly what the lock exists to prevent."""
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
