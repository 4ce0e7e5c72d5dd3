"""Who gets an edition: the subscribed partners in the config's audience segments, as the list
says now, re-read between batches when the file changes.

A frozen recipient who is no longer in the audience when their batch comes up (unsubscribed,
bounced, complained, removed from subscribers.csv or from the segments since the send started)
is not sent: they are settled in the ledger as failed with a reason ending in SKIPPED_SUFFIX,
and checked again on every later run. A changed list that cannot be read (moved, half-saved)
must stop the send: the list as last read may still hold a partner who has opted out since.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.personalise import Person
from newsflash.sending.report import SKIPPED_SUFFIX
from newsflash.state.ledger import Ledger, LedgerRecipient
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscriber_list import segment_filter
from newsflash.subscribers import Roster, load_subscribers, read_roster

__all__ = ["Audience", "first_name"]

_SUPPRESSED = "suppressed (newsflash suppressions list)"
_CHUNK = 1000  # addresses asked of the roster or the suppression store at once


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


class Audience:
    """The partner list as it is now; re-read between batches when the file changes.

    The list is kept in its roster (SQLite, subscriber_roster.py), not in Python objects: a
    batch's names are one query when the batch is claimed, so the send holds per partner
    nothing beyond its batch, however long the list.
    """

    def __init__(self, config: Config) -> None:
        self.path = config.subscribers_path
        self.segments = config.model.audience.segments
        self._stamp = self._stat()
        self.unreadable = ""  # why the changed list could not be read, if it could not
        self._store = config.state_dir / "suppressions.sqlite"
        self._store_stamp: tuple[tuple[int, int] | None, ...] = ()
        self._roster: Roster | None = None
        self._use(read_roster(self.path))
        self._drop_suppressed()

    def close(self) -> None:
        """Let SQLite delete the roster's file now rather than when it is collected."""
        if self._roster is not None:
            self._roster.close()

    def __len__(self) -> int:
        return self._size

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        return self.roster.reasons([address.lower()]).get(address.lower(), "") is None

    @property
    def roster(self) -> Roster:
        assert self._roster is not None  # set in __init__
        return self._roster

    def members(self) -> Iterator[LedgerRecipient]:
        """Everyone in the audience, in list order, as the ledger freezes them."""
        for email, organisation in self.roster.audience_organisations():
            yield LedgerRecipient.of_address(email, organisation)

    def people(self, frozen: Sequence[LedgerRecipient]) -> list[Person | None]:
        """What the payload needs of each frozen recipient, as the list says now (None for
        one not in the audience any more): one query for a batch."""
        found = self.roster.names([r.email.lower() for r in frozen])
        people: list[Person | None] = []
        for r in frozen:
            entry = found.get(r.email.lower())
            if entry is None:
                people.append(None)
                continue
            email, first, last = entry
            people.append(Person(r.recipient_id, email, first, f"{first} {last}".strip()))
        return people

    def person(self, frozen: LedgerRecipient) -> Person | None:
        return self.people([frozen])[0]

    def first(self, size: int) -> list[Person]:
        """The first `size` people of the list, as a send that has not started takes them."""
        members = list(itertools.islice(self.members(), size))
        return [p for p in self.people(members) if p is not None]

    def _store_stat(self) -> tuple[tuple[int, int] | None, ...]:
        """The suppression store changes in its WAL file first: both are watched."""
        return tuple(
            (st.st_mtime_ns, st.st_size) if (st := _stat_or_none(p)) else None
            for p in (self._store, self._store.with_name(self._store.name + "-wal"))
        )

    def _drop_suppressed(self) -> bool:
        """Take everyone the suppression store names out of the audience, whatever the list
        says (an unsubscribe, bounce or complaint heard by `newsflash serve` or a sync)."""
        self._store_stamp = self._store_stat()
        if not self._store.exists():
            return False
        store = SuppressionStore(self._store)
        try:
            gone = 0
            for keys in self.roster.audience_keys(_CHUNK * 20):
                gone += self.roster.leave_out(store.suppressed(keys), _SUPPRESSED)
        finally:
            store.close()
        self._size -= gone
        return gone > 0

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _use(self, roster: Roster) -> None:
        """The one audience rule is the list's own (the roster's `choose`)."""
        self.close()
        self._roster = roster
        self.problems = len(roster.problems)
        roster.choose(segment_filter(self.segments))
        self._size = roster.audience_size()

    def reload_if_changed(self) -> bool:
        """Re-read a changed list; if it can't be read, `unreadable` says why and the send
        must stop: the list as last read may mail a partner who has since opted out. A
        partner suppressed since the last batch (a one-click unsubscribe) leaves at once."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._store_stat() != self._store_stamp and self._drop_suppressed()
        try:
            roster = read_roster(self.path)
        except NewsflashError as e:
            self.unreadable = str(e)
            return False
        self._use(roster)
        self._stamp = stamp
        self.unreadable = ""
        self._drop_suppressed()
        return True

    def reason(self, address: str) -> str:
        """Why a frozen recipient is not in the audience now."""
        return self._reason(self.roster.reasons([address.lower()]).get(address.lower()))

    @staticmethod
    def _reason(status: str | None) -> str:
        if status is None:
            return "removed from subscribers.csv" + SKIPPED_SUFFIX
        what = status if status != "subscribed" else "moved out of the audience segments"
        return what + SKIPPED_SUFFIX

    def skip_gone(self, ledger: Ledger, edition_id: str) -> int:
        """Settle pending recipients who left the audience as failed (skipped)."""
        by_reason: dict[str, list[str]] = {}
        pending = ledger.pending_recipients(edition_id)
        for start in range(0, len(pending), _CHUNK):
            chunk = pending[start : start + _CHUNK]
            why = self.roster.reasons([r.email.lower() for r in chunk])
            for r in chunk:
                key = r.email.lower()
                if key not in why or why[key] is not None:
                    by_reason.setdefault(self._reason(why.get(key)), []).append(r.recipient_id)
        return sum(
            ledger.skip_pending(edition_id, ids, reason) for reason, ids in by_reason.items()
        )


def first_name(config: Config, address: str) -> str:
    """A test to a partner on the list shows their own greeting; anyone else gets the fallback."""
    try:
        sl = load_subscribers(config.subscribers_path)
    except NewsflashError:
        return ""
    key = address.lower()
    return next((r.first_name for r in sl.recipients if r.email.lower() == key), "")
