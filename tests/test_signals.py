"""SIGTERM as Ctrl-C, the one helper every room uses (newsflash/signals.py)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from newsflash.signals import sigterm_as_interrupt


def test_sigterm_inside_raises_keyboard_interrupt_and_the_previous_handler_comes_back() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # outside: the earlier handler again
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_off_the_main_thread_it_leaves_the_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGTERM)
    inside: list[object] = []

    def run() -> None:
        with sigterm_as_interrupt():
            inside.append(signal.getsignal(signal.SIGTERM))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert inside == [before]
