"""Contributors' receipts: each item's contact hears that their item went out, and later how
it did. Counts only: no partner's name, address or organisation goes into a receipt.

Each note is sent once: before it goes, its (edition, item, address, kind) is claimed in
state/receipts.sqlite, and a note whose claim exists is not sent again, so a resumed send, a
job fired twice or a restarted scheduler repeats nothing. A transport error gives the claim
back (the next run tries again); a crash between the claim and the send loses that one note
rather than sending it twice.

Wiring: `send_receipts(config, edition_id, transport, ledger_name)` once a send has finished
(the scheduler's send job calls it; `newsflash send` should too, after `send_edition` returns
a complete report).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.items import Item, load_items
from newsflash.months import edition_number, month_label
from newsflash.state.ledger import Ledger
from newsflash.state.ledgers import ledger_path
from newsflash.state.sqlite import WalDatabase
from newsflash.transports.base import Transport

__all__ = [
    "ReceiptLog",
    "Sent",
    "archive_url",
    "edition_items",
    "receipt_log",
    "recipients_of",
    "send_once",
    "send_receipts",
]

log = logging.getLogger("newsflash.receipts")

FILE = "receipts.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    edition_id TEXT NOT NULL,
    item_key   TEXT NOT NULL,
    address    TEXT NOT NULL,
    kind       TEXT NOT NULL,  -- 'receipt' | 'clicks' | 'report'
    sent_at    TEXT NOT NULL,
    PRIMARY KEY (edition_id, item_key, address, kind)
);
"""


class ReceiptLog:
    """Which notes went to whom, so none goes twice."""

    def __init__(self, config: Config) -> None:
        self._db = WalDatabase(config.state_dir / FILE, _SCHEMA, 1)

    def close(self) -> None:
        self._db.close()

    def claim(self, edition_id: str, item_key: str, address: str, kind: str) -> bool:
        """True if this note was not sent (nor claimed) before; it is claimed now."""
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._db.write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?)",
                (edition_id, item_key, address.lower(), kind, at),
            )
            return cursor.rowcount == 1

    def release(self, edition_id: str, item_key: str, address: str, kind: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM receipts WHERE edition_id = ? AND item_key = ? AND address = ? "
                "AND kind = ?",
                (edition_id, item_key, address.lower(), kind),
            )

    def sent(self, edition_id: str, kind: str) -> list[tuple[str, str]]:
        """(item key, address) of every note of `kind` for the edition."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT item_key, address FROM receipts WHERE edition_id = ? AND kind = ? "
                "ORDER BY item_key, address",
                (edition_id, kind),
            ).fetchall()
        return [(str(k), str(a)) for k, a in rows]


@contextmanager
def receipt_log(config: Config) -> Iterator[ReceiptLog]:
    store = ReceiptLog(config)
    try:
        yield store
    finally:
        store.close()


@dataclass
class Sent:
    """What one round of notes did, for the job's log line."""

    sent: list[str] = field(default_factory=list)
    before: int = 0  # notes already sent by an earlier run
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{len(self.sent)} sent, {self.before} sent before"
        return text + (
            f", {len(self.failed)} failed ({'; '.join(self.failed)})" if self.failed else ""
        )


def send_once(
    store: ReceiptLog,
    key: tuple[str, str, str, str],
    send: Callable[[], None],
    outcome: Sent,
) -> None:
    """Send one note unless it went before; a transport error gives its claim back."""
    edition_id, item_key, address, kind = key
    if not store.claim(*key):
        outcome.before += 1
        return
    try:
        send()
    except NewsflashError as e:
        store.release(*key)
        outcome.failed.append(f"{address}: {e}")
        log.warning("%s for %s of %s to %s not sent: %s", kind, item_key, edition_id, address, e)
        return
    outcome.sent.append(address)


def archive_url(config: Config, edition_id: str, item: Item) -> str:
    """The item in the web archive: the edition's page (`newsflash archive`) at its anchor."""
    base = config.model.newsletter.web_base_url.rstrip("/")
    return f"{base}/{edition_id}/#{item.anchor}"


def edition_items(config: Config, keys: Sequence[str]) -> list[Item]:
    """The items a send froze, as their files read now; a file gone since is left out."""
    loaded = {i.key: i for i in load_items(config.submissions_dir, config.section_keys).items}
    return [loaded[k] for k in keys if k in loaded]


def recipients_of(config: Config, item: Item) -> str | None:
    """The item's contact, unless receipts are off or the contact asked for none."""
    settings = config.model.receipts
    contact = item.contact.strip()
    if not settings.enabled or not contact:
        return None
    if contact.lower() in {a.lower() for a in settings.exclude}:
        return None
    return contact


def _went_out(config: Config, edition_id: str, ledger_name: str) -> tuple[int, list[str]] | None:
    """(partners accepted, item keys) once the send has nothing left pending or in flight."""
    path = ledger_path(config, ledger_name)
    if not path.exists():
        return None
    with Ledger(path) as ledger:
        status = ledger.status(edition_id)
        manifest = ledger.manifest(edition_id) or {}
    if status.accepted == 0 or status.pending or status.in_flight:
        return None
    entries = manifest.get("items", [])
    return status.accepted, [str(e["path"]) for e in entries if isinstance(e, dict) and "path" in e]


def _edition_name(config: Config, edition_id: str) -> str:
    nl = config.model.newsletter
    number = edition_number(edition_id, nl.first_edition)
    return f"{nl.name} No. {number} ({month_label(edition_id)})"


def receipt_text(config: Config, edition_id: str, item: Item, partners: int) -> tuple[str, str]:
    """Subject and text of one receipt."""
    name = _edition_name(config, edition_id)
    later = (
        "\nIn a few days you will hear how many partners clicked its links.\n"
        if config.model.schedule.report is not None and config.model.schedule.report.enabled
        else ""
    )
    text = (
        f"Your item '{item.title}' went out in {name}, edition {edition_id}, "
        f"to {partners} partner{'s' if partners != 1 else ''}.\n\n"
        f"It is in the web archive at:\n{archive_url(config, edition_id, item)}\n{later}\n"
        "This receipt holds counts only; it names no partner.\n"
    )
    return f"{name}: your item went to {partners} partners", text


def send_receipts(config: Config, edition_id: str, transport: Transport, ledger_name: str) -> Sent:
    """A receipt to each item's contact, once, after the edition went out through the ledger."""
    outcome = Sent()
    went = _went_out(config, edition_id, ledger_name)
    if went is None or not config.model.receipts.enabled:
        return outcome
    partners, keys = went
    with receipt_log(config) as store:
        for item in edition_items(config, keys):
            contact = recipients_of(config, item)
            if contact is None:
                continue
            subject, text = receipt_text(config, edition_id, item, partners)
            send_once(
                store,
                (edition_id, item.key, contact, "receipt"),
                partial(transport.send_notice, [contact], subject, text),
                outcome,
            )
    return outcome
