"""Each recipient's outcome folded from their events one by one, in Python.

The event store rolls events up as they arrive (state/event_rollup.py), so a report of a
current store never needs this; it is how the figures read events given row by row: a store
no newer newsflash has opened yet (its rollup is filled on the next open, and a report never
writes), and the tests that feed rows straight to `figures.compute`. The two must agree on
every figure; tests/test_report_rollup.py checks it on random event streams.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from newsflash.reports.rows import EventRow, Outcome

__all__ = ["fold"]

_UNSUBSCRIBES = frozenset({"unsubscribe", "group_unsubscribe"})


@dataclass(slots=True)
class _Tally:
    events: int = 0
    delivered: bool = False
    delivered_at: int | None = None
    deferred: bool = False
    dropped: bool = False
    bounced: bool = False
    bounce_type: str | None = None
    bounce_status: str | None = None
    opened: bool = False
    human_opened: bool = False
    spam: bool = False
    unsubscribed: bool = False

    def add(self, row: EventRow) -> None:
        """Count one event (a bounce's type and status are set apart, latest last)."""
        self.events += 1
        kind = row.kind
        if kind == "delivered":
            self.delivered = True
            if row.at is not None and (self.delivered_at is None or row.at < self.delivered_at):
                self.delivered_at = row.at
        elif kind == "open":
            self.opened = True
            self.human_opened = self.human_opened or not row.machine_open
        self.deferred = self.deferred or kind == "deferred"
        self.dropped = self.dropped or kind == "dropped"
        self.spam = self.spam or kind == "spamreport"
        self.unsubscribed = self.unsubscribed or kind in _UNSUBSCRIBES


def fold(events: Iterable[EventRow]) -> list[Outcome]:
    """One Outcome per recipient named by any event. The latest bounce is the last by time
    (an event without one as time 0), and of bounces at the same time the last given."""
    tallies: dict[str, _Tally] = {}
    bounces: list[EventRow] = []
    for row in events:
        tally = tallies.get(row.recipient_id)
        if tally is None:
            tally = tallies[row.recipient_id] = _Tally()
        tally.add(row)
        if row.kind == "bounce":
            bounces.append(row)
    for row in sorted(bounces, key=lambda r: r.at or 0):
        tally = tallies[row.recipient_id]
        tally.bounced, tally.bounce_type, tally.bounce_status = True, row.bounce_type, row.status
    return [
        Outcome(rid, t.events, t.delivered, t.delivered_at, t.deferred, t.dropped, t.bounced,
                t.bounce_type, t.bounce_status, t.opened, t.human_opened, t.spam, t.unsubscribed)
        for rid, t in tallies.items()
    ]  # fmt: skip
