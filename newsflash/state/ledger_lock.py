"""The send lock: one running send per edition, held as an flock next to the ledger.

Lock files live in ``locks/`` next to the database (``state/locks/<edition>.lock`` for the
usual ``state/ledger.sqlite``), so the lock and the data it guards can't get separated.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from newsflash.errors import LedgerError, SendInProgress
from newsflash.files import LockHeld, lock_exclusive, unlock
from newsflash.state.ledger_db import LedgerDb

__all__ = ["SendLock"]

# Edition ids become lock file names, so nothing that could escape state/locks/.
_EDITION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SendLock(LedgerDb):
    """The part of `Ledger` that takes, checks and gives back the per-edition send lock."""

    @contextlib.contextmanager
    def sending(self, edition_id: str) -> Iterator[None]:
        """Hold the edition's send lock for the whole send.

        An flock, not a row in the database: the kernel drops it the instant its process dies,
        even by SIGKILL, so a crashed send never leaves a stale lock for someone to clear by hand,
        and "in flight" rows found by the next holder can only belong to a dead process.
        """
        if edition_id in self._locks:
            raise LedgerError(f"this process is already sending edition {edition_id}")
        fd = self._acquire(edition_id)
        self._locks[edition_id] = fd
        try:
            yield
        finally:
            self._release(edition_id)

    def _lock_path(self, edition_id: str) -> Path:
        if not _EDITION_ID.fullmatch(edition_id):
            raise LedgerError(
                f"edition id {edition_id!r} is not usable: use letters, digits, '.', '_' or '-' "
                "(e.g. 2022-02)"
            )
        return self._lock_dir / f"{edition_id}.lock"

    def _acquire(self, edition_id: str) -> int:
        path = self._lock_path(edition_id)
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        try:
            return lock_exclusive(path)
        except LockHeld as e:
            raise SendInProgress(
                f"another send of edition {edition_id} is running (pid {e.holder}); "
                f"wait for it to finish, or check `newsflash status {edition_id}`"
            ) from None

    def _release(self, edition_id: str) -> None:
        fd = self._locks.pop(edition_id, None)
        if fd is not None:
            unlock(fd)  # the lock file stays; see files.unlock

    def _release_all(self) -> None:
        for edition_id in list(self._locks):
            self._release(edition_id)

    def _require_lock(self, edition_id: str, action: str) -> None:
        if edition_id not in self._locks:
            raise LedgerError(
                f"{action} for edition {edition_id} needs its send lock: "
                f"call it inside `with ledger.sending({edition_id!r}):`"
            )
