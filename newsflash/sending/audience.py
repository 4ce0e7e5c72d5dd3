"""Who gets an edition: the subscribed partners in the config's audience segments, as the list
says now, re-read between batches when the file changes.

A frozen recipient who is no longer in the audience when their batch comes up (unsubscribed,
bounced, complained, removed from subscribers.csv or from the segments since the send started)
is not sent: they are settled in the ledger as failed with a reason ending in SKIPPED_SUFFIX,
and checked again on every later run. A changed list that cannot be read (moved, half-saved)
must stop the send: the list as last read may still hold a partner who has opted out since.
"""

from __future__ import annotations

import os
from pathlib import Path

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.personalise import Person
from newsflash.sending.report import SKIPPED_SUFFIX
from newsflash.state.ledger import Ledger
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscribers import SubscriberList, load_subscribers

__all__ = ["Audience", "first_name"]


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


class Audience:
    """The partner list as it is now; re-read between batches when the file changes."""

    def __init__(self, config: Config) -> None:
        self.path = config.subscribers_path
        self.segments = config.model.audience.segments
        self._stamp = self._stat()
        self.unreadable = ""  # why the changed list could not be read, if it could not
        self._store = config.state_dir / "suppressions.sqlite"
        self._store_stamp: tuple[tuple[int, int] | None, ...] = ()
        self._use(load_subscribers(self.path))

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
            gone = store.suppressed(p.email for p in self.people.values())
        finally:
            store.close()
        if not gone:
            return False
        for rid in [rid for rid, p in self.people.items() if p.email.lower() in gone]:
            del self.people[rid]
            self.elsewhere[rid] = "suppressed (newsflash suppressions list)"
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
        in_audience = {id(r) for r in sl.audience(self.segments)}  # the one audience rule
        self.people: dict[str, Person] = {}  # in list order
        self.elsewhere: dict[str, str] = {}  # not in the audience: recipient id -> status
        for r in sl.recipients:
            rid = r.recipient_id  # hashes the address: once per person, not per use
            if id(r) in in_audience:
                self.people[rid] = Person(
                    rid, r.email, r.first_name, f"{r.first_name} {r.last_name}".strip()
                )
            else:
                self.elsewhere[rid] = r.status
        self._drop_suppressed()

    def reload_if_changed(self) -> bool:
        """Re-read a changed list; if it can't be read, `unreadable` says why and the send
        must stop: the list as last read may mail a partner who has since opted out. A
        partner suppressed since the last batch (a one-click unsubscribe) leaves at once."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._store_stat() != self._store_stamp and self._drop_suppressed()
        try:
            sl = load_subscribers(self.path)
        except NewsflashError as e:
            self.unreadable = str(e)
            return False
        self._stamp = stamp
        self.unreadable = ""
        self._use(sl)
        return True

    def reason(self, rid: str) -> str:
        """Why a frozen recipient is not in the audience now."""
        status = self.elsewhere.get(rid)
        if status is None:
            return "removed from subscribers.csv" + SKIPPED_SUFFIX
        what = status if status != "subscribed" else "moved out of the audience segments"
        return what + SKIPPED_SUFFIX

    def skip_gone(self, ledger: Ledger, edition_id: str) -> int:
        """Settle pending recipients who left the audience as failed (skipped)."""
        gone = [
            r.recipient_id
            for r in ledger.pending_recipients(edition_id)
            if r.recipient_id not in self.people
        ]
        if not gone:
            return 0
        by_reason: dict[str, list[str]] = {}
        for rid in gone:
            by_reason.setdefault(self.reason(rid), []).append(rid)
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
