"""The local transport: every personalised message as a standard .eml file, sent nowhere.

The default when no SENDGRID_API_KEY is set, so a rehearsal can never reach a partner. Files are
what a partner's mail client would receive (message.to_mime: both parts, the same headers as
SendGrid's), one per recipient under ``outbox/<edition>/``, named by recipient id and address so
they sort stably and a resend overwrites rather than duplicates. Test copies go to
``outbox/tests/<edition>/`` and notices to ``outbox/notices/``, so neither is mistaken for the
edition's recipients. Each file is written to a temporary name and renamed: a crash never leaves
half a message.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from pathlib import Path

from newsflash.errors import TransportError
from newsflash.files import slug, write_atomic
from newsflash.message import Message, to_mime
from newsflash.personalise import Person
from newsflash.state.ledgers import ledger_name
from newsflash.transports.base import BatchResult

MAX_PER_BATCH = 1000
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_name(text: str, limit: int = 80) -> str:
    return _UNSAFE.sub("_", text).strip("._")[:limit] or "x"


class OutboxTransport:
    """Writes .eml files; see the module docstring for the layout."""

    name = "outbox"

    def __init__(
        self,
        root: Path,
        *,
        from_email: str = "newsflash@localhost",
        from_name: str = "",
        batch_size: int = MAX_PER_BATCH,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.root = Path(root)
        self.request_outstanding = False  # writing files again is harmless: never uncertain
        self.from_email = from_email
        self.from_name = from_name
        self._max_batch = max(1, min(MAX_PER_BATCH, batch_size))
        self._now = now

    @property
    def max_batch(self) -> int:
        return self._max_batch

    @property
    def ledger_name(self) -> str:
        return ledger_name(self.name)

    def prepare(self, batch: Sequence[Person], message: Message) -> None:
        """Writing a file costs less than guessing which one comes next: nothing to prepare."""

    def folder(self, message: Message) -> Path:
        edition = safe_name(message.edition_id)
        return self.root / "tests" / edition if message.test else self.root / edition

    def path_for(self, message: Message, person: Person) -> Path:
        name = f"{safe_name(person.recipient_id, 32)}-{safe_name(person.email.lower())}.eml"
        if message.test:  # several test copies to one address must not overwrite each other
            name = f"{self._now():%Y%m%dT%H%M%S%f}-{name}"
        return self.folder(message) / name

    def describe_request(self, batch: Sequence[Person], message: Message) -> dict[str, object]:
        return {
            "writes": [str(self.path_for(message, p)) for p in batch],
            "subject": message.subject,
        }

    def send(self, batch: Sequence[Person], message: Message) -> BatchResult:
        written: Path | None = None
        try:
            for person in batch:
                written = self.path_for(message, person)
                write_atomic(written, to_mime(message, person).as_bytes())
        except OSError as e:
            raise TransportError(
                f"cannot write {written}: {e.strerror or e}; check the disk and the "
                f"permissions of {self.root}"
            ) from None
        except ValueError as e:  # a header the email package refuses; nothing half-sent here
            raise TransportError(f"cannot write {written}: {e}") from None
        # A test copy (one person) names its file, so the sender can say where it went.
        where = written if message.test and written is not None else self.folder(message)
        return BatchResult(
            "accepted", message_id=f"outbox:{where.relative_to(self.root).as_posix()}", requests=0
        )

    def send_notice(self, to: Sequence[str], subject: str, text: str) -> None:
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = email.utils.formataddr((self.from_name, self.from_email))
        msg["To"] = ", ".join(dict.fromkeys(to))
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(localtime=False)
        domain = self.from_email.rpartition("@")[2] or "newsflash.local"
        msg["Message-ID"] = email.utils.make_msgid(idstring="notice", domain=domain)
        msg.set_content(text)
        name = slug(subject, limit=50, empty="notice")
        path = self.root / "notices" / f"{self._now():%Y%m%dT%H%M%S%f}-{name}.eml"
        try:
            write_atomic(path, msg.as_bytes())
        except OSError as e:
            raise TransportError(f"cannot write {path}: {e.strerror or e}") from None


__all__ = ["OutboxTransport", "safe_name"]
