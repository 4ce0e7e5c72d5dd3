"""The ledger's schema and the database under it: tables, version, transactions.

State lives on batches, not on recipients: a recipient points at the batch it was last handed out
in (``NULL`` = pending), so marking 1000 recipients accepted is one row update, and a 100k list
costs a fraction of a second instead of minutes of per-row updates. A ledger written by a newer
newsflash (a higher ``user_version``) is refused rather than misread.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from newsflash.errors import LedgerError
from newsflash.state.sqlite import WalDatabase

__all__ = ["SCHEMA", "SCHEMA_VERSION", "LedgerDb", "has_organisation"]

SCHEMA_VERSION = 1
# Never "start again": a fresh ledger knows nobody was sent, and the next send mails them all.
_IF_DAMAGED = (
    "restore it from a backup before sending; do not delete it or start a new one, or the "
    "next send mails again every partner who already has an edition"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    edition_id    TEXT PRIMARY KEY,
    manifest_hash TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    total         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id         INTEGER PRIMARY KEY,
    edition_id TEXT NOT NULL REFERENCES sends(edition_id),
    state      TEXT NOT NULL
               CHECK (state IN ('in_flight', 'accepted', 'failed', 'uncertain', 'superseded')),
    message_id TEXT,
    reason     TEXT,
    attempts   INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_edition ON batches (edition_id, state);
CREATE TABLE IF NOT EXISTS recipients (
    edition_id   TEXT NOT NULL REFERENCES sends(edition_id),
    recipient_id TEXT NOT NULL,
    email        TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    batch_id     INTEGER REFERENCES batches(id),
    organisation TEXT,  -- as the partner list said at the freeze; NULL: frozen before it was kept
    PRIMARY KEY (edition_id, recipient_id)
);
-- batch_id leads so that one index serves "next pending in file order" (batch_id IS NULL),
-- "members of batch N" and the foreign-key check when batches are deleted by reset().
CREATE INDEX IF NOT EXISTS recipients_by_batch ON recipients (batch_id, edition_id, seq);
-- Who was in a batch before it was superseded: the recipients row forgets it on retry.
CREATE TABLE IF NOT EXISTS superseded (
    batch_id     INTEGER NOT NULL REFERENCES batches(id),
    edition_id   TEXT NOT NULL,
    recipient_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS superseded_by_recipient ON superseded (edition_id, recipient_id);
CREATE TABLE IF NOT EXISTS approvals (
    edition_id    TEXT PRIMARY KEY,
    manifest_hash TEXT NOT NULL,
    approved_at   TEXT NOT NULL,
    approved_by   TEXT NOT NULL
);
"""


def _add_organisation(db: WalDatabase) -> None:
    """Give a ledger written before recipients kept their organisation that column, on open.

    A column that may be NULL, not a new schema version: an older newsflash can still read
    and write the ledger (it leaves the column NULL, and a report then reads the partner list
    for those recipients, as before), so going back a version never strands a send. Looked
    for before the write lock is taken, so opening an upgraded ledger writes nothing; asked
    again under the lock, so two processes opening one old ledger add it once."""
    with db.read() as conn:
        if has_organisation(conn):
            return
    with db.write() as conn:
        if not has_organisation(conn):
            conn.execute("ALTER TABLE recipients ADD COLUMN organisation TEXT")


def has_organisation(conn: sqlite3.Connection) -> bool:
    """Whether the ledger's recipients keep their organisation (a report reads older ones)."""
    return any(row[1] == "organisation" for row in conn.execute("PRAGMA table_info(recipients)"))


class LedgerDb:
    """The ledger file (WAL, synchronous=FULL, foreign keys on) and its send-lock table.

    The parts of `Ledger` share this: the database, and the send locks this process holds
    (edition id -> lock file descriptor), which every state change checks.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self._db = WalDatabase(
            path,
            SCHEMA,
            SCHEMA_VERSION,
            foreign_keys=True,
            error=LedgerError,
            if_damaged=_IF_DAMAGED,
            read_only=read_only,
        )
        if not read_only:  # a reader asks nothing of the column, and may not write
            _add_organisation(self._db)
        self.path = self._db.path
        self._lock_dir = self.path.parent / "locks"
        self._locks: dict[str, int] = {}

    @property
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, for a test that counts rows the API does not expose."""
        return self._db.connection()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """IMMEDIATE takes the write lock up front, so two processes can't read the same
        pending rows and then both claim them."""
        with self._db.write() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot, so counts and lists in a status agree with each other."""
        with self._db.read() as conn:
            yield conn
