"""The contract every transport keeps, so sending and the ledger never care which one runs.

Everything a caller may ask of a transport is declared here (nothing probes one with getattr),
and so is the one rule for which transport runs by default: SendGrid when its key is set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from newsflash.message import Message
from newsflash.personalise import Person

__all__ = ["ENV_KEY", "BatchResult", "Outcome", "Transport", "default_transport_name"]

ENV_KEY = "SENDGRID_API_KEY"

Outcome = Literal["accepted", "failed", "uncertain"]


def default_transport_name() -> str:
    """The one rule: SendGrid when a key is set, otherwise the harmless outbox."""
    return "sendgrid" if os.environ.get(ENV_KEY, "").strip() else "outbox"


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

    @property
    def request_outstanding(self) -> bool:
        """True only while a request has left and its answer has not come: an interruption
        then leaves the batch uncertain; at any other moment (a backoff, a rate-limit wait,
        building the payload) the batch has definitely not been sent."""
        ...

    @property
    def max_batch(self) -> int:
        """The most people one `send` takes."""
        ...

    @property
    def ledger_name(self) -> str:
        """The ledger this transport's sends are recorded in (state/ledgers.py names them)."""
        ...

    def send(self, batch: Sequence[Person], message: Message) -> BatchResult:
        """Send one message to every person in the batch (at most the transport's max_batch)."""
        ...

    def prepare(self, batch: Sequence[Person], message: Message) -> None:
        """A hint: this batch is likely to be sent next. May start work early; may ignore it."""
        ...

    def describe_request(self, batch: Sequence[Person], message: Message) -> dict[str, Any]:
        """What `send` would do with this batch, for a dry run; never sends, never a secret."""
        ...

    def send_notice(self, to: Sequence[str], subject: str, text: str) -> None:
        """A plain-text notice (proofs' covers, reminders, intake results); raises on failure."""
        ...
