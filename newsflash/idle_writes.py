"""Writes that need not hold up the caller: done by one thread once the process has been
quiet for a moment, and whatever still waits at exit is done then.

What a warm rebuild keeps for the *next* process (its changed item's parse, in the user
cache) is of no use to this one, which holds the parse in memory; writing it was a third of
reading the items. So the preview and the scheduler hand it here: a daemon thread writes it
once no new write has come for IDLE_S (a contributor saving again and again is written after
the last save), and atexit writes what is left, so a short `newsflash build` keeps every
parse as before. It is still safe because each job is one whole file written atomically
(files.write_atomic: a temporary file, then a rename), named by the hash of what it holds and
checked where it is written: another process sees the file or no file, never half of one,
and no file only costs it a parse. A process killed before the write loses that entry and
nothing else; the exit waits for a job under way, so no temporary file is left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable

IDLE_S = 0.25  # quiet needed before the thread writes
MOST_WAITING = 256  # past it a job runs at once, so a busy process holds no more than this

_lock = threading.Lock()  # guards the list, the time and the thread
_busy = threading.Lock()  # held while jobs run: the exit waits for the thread's
_wake = threading.Event()
_waiting: list[Callable[[], None]] = []
_last = 0.0
_thread: threading.Thread | None = None


def later(job: Callable[[], None]) -> None:
    """Run `job` when the process is quiet, or at exit; at once if too many wait."""
    global _last, _thread
    with _lock:
        if len(_waiting) < MOST_WAITING:
            _waiting.append(job)
            _last = time.monotonic()
            if _thread is None:
                _thread = threading.Thread(target=_run, name="newsflash-idle-writes", daemon=True)
                _thread.start()
                atexit.register(flush)
            _wake.set()
            return
    _done(job)


def flush() -> None:
    """Run every waiting job now: at exit, and for the tests."""
    with _busy:
        with _lock:
            jobs = _waiting[:]
            del _waiting[:]
        for job in jobs:
            _done(job)


def waiting() -> int:
    """How many jobs wait."""
    with _lock:
        return len(_waiting)


def _done(job: Callable[[], None]) -> None:
    """A job's failure is its own file unwritten: a cache, never the caller's error."""
    with contextlib.suppress(Exception):
        job()


def _run() -> None:
    while True:
        _wake.wait()
        with _lock:
            quiet = _last + IDLE_S - time.monotonic()
            if not _waiting:
                _wake.clear()
                continue
        if quiet > 0:
            time.sleep(quiet)
            continue
        flush()
