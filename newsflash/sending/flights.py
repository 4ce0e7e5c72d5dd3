"""Batches in flight together: each request on a thread of its own, answers back in one queue.

The send loop (send.py) stays the only one to touch the ledger: it commits a batch as in
flight, `launch`es it here, and records each `Answer` as it comes, in the order they come.
A transport call may take long (SendGrid answers a 1000-partner request in hundreds of
milliseconds, longer under a 429), so with `[sendgrid] concurrency` of them at once the wait
overlaps. The threads are daemons: a second Ctrl-C ends the process at once, leaving their
batches in flight, which the next run records as uncertain (never resent unasked).

A thread is started only when every one started is busy, and then takes batch after batch
until `close`: starting a thread per batch made the send loop wait, at each of them, for the
new thread to get the GIL from the ones building payloads (the loop is what claims the next
batch, so its waits are the send's).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from newsflash.message import Message
from newsflash.personalise import Person
from newsflash.state.ledger import Batch
from newsflash.transports.base import BatchResult, Transport

__all__ = ["Answer", "Flights"]


@dataclass(frozen=True)
class Answer:
    """What became of one batch: the transport's result, or what it raised and whether its
    request had left by then (`outstanding`: then it may have been accepted)."""

    batch: Batch
    people: Sequence[Person]
    result: BatchResult | None = None
    error: BaseException | None = None
    outstanding: bool = False


class Flights:
    """The batches whose answers are awaited."""

    def __init__(self, transport: Transport, message: Message) -> None:
        self._transport = transport
        self._message = message
        self._answers: queue.Queue[Answer] = queue.Queue()
        self._work: queue.SimpleQueue[tuple[Batch, Sequence[Person]] | None] = queue.SimpleQueue()
        self._threads = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def launch(self, batch: Batch, people: Sequence[Person]) -> None:
        self._count += 1
        self._work.put((batch, people))
        if self._threads < self._count:  # every thread has a batch: one more
            self._threads += 1
            name = f"newsflash-flight-{self._threads}"
            threading.Thread(target=self._serve, name=name, daemon=True).start()

    def close(self) -> None:
        """Let the threads end once their batch (if any) is answered."""
        for _ in range(self._threads):
            self._work.put(None)
        self._threads = 0

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            self._fly(*work)

    def next_answer(self) -> Answer:
        """The next answer to come, whichever batch it is for."""
        answer = self._answers.get()
        self._count -= 1
        return answer

    def _fly(self, batch: Batch, people: Sequence[Person]) -> None:
        try:
            result = self._transport.send(people, self._message)
        except BaseException as e:  # handed to the send loop, which decides what it means
            # request_outstanding is this thread's own (transports keep it per thread).
            outstanding = self._transport.request_outstanding
            self._answers.put(Answer(batch, people, error=e, outstanding=outstanding))
            return
        self._answers.put(Answer(batch, people, result=result))
