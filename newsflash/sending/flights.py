"""Batches in flight together: each request in a thread of its own, answers back in one queue.

The send loop (send.py) stays the only one to touch the ledger: it commits a batch as in
flight, `launch`es it here, and records each `Answer` as it comes, in the order they come.
A transport call may take long (SendGrid answers a 1000-partner request in hundreds of
milliseconds, longer under a 429), so with `[sendgrid] concurrency` of them at once the wait
overlaps. The threads are daemons: a second Ctrl-C ends the process at once, leaving their
batches in flight, which the next run records as uncertain (never resent unasked).
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
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def launch(self, batch: Batch, people: Sequence[Person]) -> None:
        self._count += 1
        threading.Thread(
            target=self._fly, args=(batch, people), name=f"newsflash-batch-{batch.id}", daemon=True
        ).start()

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
