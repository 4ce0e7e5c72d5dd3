"""What the ledger hands out and reports: recipients, claimed batches, an edition's status.

Kept apart from the SQL so that sending, reports and the CLI can name these types without
reading how the ledger stores them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from newsflash.errors import LedgerError
from newsflash.recipient_ids import recipient_id

__all__ = [
    "Batch",
    "EditionStatus",
    "LedgerRecipient",
    "manifest_paths",
    "parse_manifest",
    "timestamp",
]


@dataclass(frozen=True)
class LedgerRecipient:
    recipient_id: str
    email: str
    #: The partner's organisation as the list said when the send froze them ('' for none),
    #: kept for the report; None where it is not known (a ledger read back, a hand-made
    #: recipient). Not part of who the recipient is, so not compared.
    organisation: str | None = field(default=None, compare=False)
    #: True only where the sender made the id from this very address (`of_address`), so
    #: the freeze need not hash a hundred thousand addresses again to know it.
    derived: bool = field(default=False, compare=False, repr=False)

    @classmethod
    def of_address(cls, email: str, organisation: str | None = None) -> LedgerRecipient:
        """The recipient the send freezes for `email`, its id made from it here; marked
        derived when the ledger's folding of the address (strip, then lower) is the text the
        id is made from (lowered), which is when it has no space at either end."""
        return cls(recipient_id(email), email, organisation, email == email.strip())


@dataclass(frozen=True)
class Batch:
    id: int
    edition_id: str
    recipients: tuple[LedgerRecipient, ...]


@dataclass(frozen=True)
class EditionStatus:
    edition_id: str
    manifest_hash: str | None
    started_at: str | None
    finished_at: str | None
    pending: int
    in_flight: int
    accepted: int
    failed: int
    uncertain: int
    total: int
    uncertain_recipients: tuple[str, ...]
    failed_recipients: tuple[tuple[str, str], ...]
    approval_hash: str | None

    @property
    def complete(self) -> bool:
        """An empty edition is not "complete": nobody got it, and saying so would hide that."""
        return self.total > 0 and self.accepted == self.total


def timestamp() -> str:
    """UTC to the second: the ledger's timestamps are for people reading a status."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_manifest(edition_id: str, manifest_json: str) -> dict[str, Any]:
    """A stored manifest as a dict (start_send refuses invalid JSON, so this is a safeguard)."""
    try:
        manifest = json.loads(manifest_json)
    except ValueError as exc:
        raise LedgerError(
            f"the ledger's manifest of edition {edition_id} is not valid JSON: {exc}"
        ) from exc
    return manifest if isinstance(manifest, dict) else {}


def manifest_paths(edition_id: str, manifest_json: str) -> list[str]:
    """The item paths a stored manifest lists."""
    items = parse_manifest(edition_id, manifest_json).get("items", [])
    return [
        item["path"]
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("path"), str)
    ]
