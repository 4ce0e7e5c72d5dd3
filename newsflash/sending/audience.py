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
from collections.abc import Iterator
from pathlib import Path

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.personalise import Person
from newsflash.sending.report import SKIPPED_SUFFIX
from newsflash.state.ledger import Ledger, LedgerRecipient
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscribers import SubscriberList, load_subscribers, recipient_id

__all__ = ["Audience", "first_name"]


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


class Audience:
    """The partner list as it is now; re-read between batches when the file changes.

    Per partner it keeps only what a payload needs, in a tuple keyed by the address as the
    list folds it (lowercased), not the parsed row: a `Person` is made per batch, when its
    batch is claimed, so the send never holds one per partner (nor a second copy of the
    list's names and ids).
    """

    def __init__(self, config: Config) -> None:
        self.path = config.subscribers_path
        self.segments = config.model.audience.segments
        self._stamp = self._stat()
        self.unreadable = ""  # why the changed list could not be read, if it could not
        self._store = config.state_dir / "suppressions.sqlite"
        self._store_stamp: tuple[tuple[int, int] | None, ...] = ()
        self._use(load_subscribers(self.path))
        self._drop_suppressed()  # once the parsed list is freed: it builds a set of its own

    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and address.lower() in self._people

    def members(self) -> Iterator[LedgerRecipient]:
        """Everyone in the audience, in list order, as the ledger freezes them."""
        for email, _, _ in self._people.values():
            yield LedgerRecipient(recipient_id(email), email)

    def person(self, frozen: LedgerRecipient) -> Person | None:
        """What the payload needs of a frozen recipient, as the list says now; None if they
        are not in the audience any more."""
        entry = self._people.get(frozen.email.lower())
        if entry is None:
            return None
        email, first, last = entry
        return Person(frozen.recipient_id, email, first, f"{first} {last}".strip())

    def first(self, size: int) -> list[Person]:
        """The first `size` people of the list, as a send that has not started takes them."""
        people = (self.person(r) for r in itertools.islice(self.members(), size))
        return [p for p in people if p is not None]

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
            gone = store.suppressed(self._people)  # the keys: addresses, lowercased
        finally:
            store.close()
        if not gone:
            return False
        for key in [key for key in self._people if key in gone]:
            del self._people[key]
            self._elsewhere[key] = "suppressed (newsflash suppressions list)"
        return True

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _use(self, sl: SubscriberList) -> None:
        """Keep only what sending needs, so the parsed list (the bulk of a send's memory at
        100k partners) is freed before the ledger is filled."""
        self.problems = len(sl.problems)
        # in list order; the one audience rule is the list's own
        self._people: dict[str, tuple[str, str, str]] = {}
        for r in sl.audience(self.segments):
            self._people[_folded(r.email)] = (r.email, r.first_name, r.last_name)
        self._elsewhere: dict[str, str] = {}  # not in the audience: address -> status
        for r in sl.recipients:
            key = _folded(r.email)
            if key not in self._people:
                self._elsewhere[key] = r.status

    def reload_if_changed(self) -> bool:
        """Re-read a changed list; if it can't be read, `unreadable` says why and the send
        must stop: the list as last read may mail a partner who has since opted out. A
        partner suppressed since the last batch (a one-click unsubscribe) leaves at once."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._store_stat() != self._store_stamp and self._drop_suppressed()
        try:
            self._use(load_subscribers(self.path))
        except NewsflashError as e:
            self.unreadable = str(e)
            return False
        self._stamp = stamp
        self.unreadable = ""
        self._drop_suppressed()
        return True

    def reason(self, address: str) -> str:
        """Why a frozen recipient is not in the audience now."""
        status = self._elsewhere.get(address.lower())
        if status is None:
            return "removed from subscribers.csv" + SKIPPED_SUFFIX
        what = status if status != "subscribed" else "moved out of the audience segments"
        return what + SKIPPED_SUFFIX

    def skip_gone(self, ledger: Ledger, edition_id: str) -> int:
        """Settle pending recipients who left the audience as failed (skipped)."""
        by_reason: dict[str, list[str]] = {}
        for r in ledger.pending_recipients(edition_id):
            if r.email not in self:
                by_reason.setdefault(self.reason(r.email), []).append(r.recipient_id)
        return sum(
            ledger.skip_pending(edition_id, ids, reason) for reason, ids in by_reason.items()
        )


def _folded(email: str) -> str:
    """The address as the list merges it; the same string when it is lowercase already (most
    are), so the key costs nothing beside the address."""
    key = email.lower()
    return email if key == email else key


def first_name(config: Config, address: str) -> str:
    """A test to a partner on the list shows their own greeting; anyone else gets the fallback."""
    try:
        sl = load_subscribers(config.subscribers_path)
    except NewsflashError:
        return ""
    key = address.lower()
    return next((r.first_name for r in sl.recipients if r.email.lower() == key), "")
