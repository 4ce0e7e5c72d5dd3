"""SIGTERM as Ctrl-C: `systemctl stop`, `kill` and a container's stop end a send or a server the
way an interrupt does, through the same `except KeyboardInterrupt` and `finally` blocks.

The one helper for it, on the ground floor so that any room (the send command, the preview
server, the scheduler) can use it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["sigterm_as_interrupt"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt; the previous handler comes back after.

    Only the main thread may set signal handlers: elsewhere (a test's server thread) this does
    nothing, and SIGTERM keeps whatever meaning the process gave it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
