"""The interface every transport keeps, so sending and the ledger never care which one runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from newsflash.message import Message
from newsflash.personalise import Person

Outcome = Literal["accepted", "failed", "uncertain"]


@dataclass(frozen=True)
class BatchResult:
    """What became of one request: accepted (with the provider's id), refused, or unknown.

    `uncertain` means the request may have been accepted but no answer came (a timeout, a
    dropped connection after sending): the ledger must not resend it without being asked.
    """

    outcome: Outcome
    message_id: str | None = None
    reason: str = ""
    requests: int = 1


class Transport(Protocol):
    name: str
    request_outstanding: bool
    """True only while a request has left and its answer has not come: an interruption then
    leaves the batch uncertain; at any other moment (a backoff, a rate-limit wait, building
    the payload) the batch has definitely not been sent."""

    def send(self, batch: Sequence[Person], message: Message) -> BatchResult:
        """Send one message to every person in the batch (at most the transport's max_batch)."""
        ...

    def send_notice(self, to: Sequence[str], subject: str, text: str) -> None:
        """A plain-text notice (proofs' covers, reminders, intake results); raises on failure."""
        ...

    @property
    def max_batch(self) -> int: ...
