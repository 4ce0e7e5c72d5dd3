"""The send ledger: the one guard against sending a monthly edition twice to anyone.

A newsletter that reaches a partner twice looks careless, and one that silently skips them is
worse, so every recipient of an edition is always in a known state (see ledger_batches), and a
send holds the edition's lock (ledger_lock) for as long as it runs. `Ledger` is the one object
callers use; its parts live by what they hold:

* ledger_db: the schema, its version and the transactions over state/sqlite.py's WAL file;
* ledger_lock: the per-edition send lock (an flock the kernel drops when its process dies);
* ledger_batches: freezing the recipients, claiming and settling batches, reset;
* ledger_settle: uncertain recipients SendGrid's events proved accepted, and who must wait;
* ledger_queries: status, frozen and published items, approvals;
* ledger_records: the records they hand out (LedgerRecipient, Batch, EditionStatus).
"""

from __future__ import annotations

from newsflash.state.ledger_batches import LedgerBatches
from newsflash.state.ledger_records import Batch, EditionStatus, LedgerRecipient
from newsflash.state.ledger_settle import Doubtful, LedgerSettle

__all__ = ["Batch", "Doubtful", "EditionStatus", "Ledger", "LedgerRecipient"]


class Ledger(LedgerBatches, LedgerSettle):
    """One SQLite file (WAL) shared by every ``newsflash`` process of a project."""

    def close(self) -> None:
        self._release_all()
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
