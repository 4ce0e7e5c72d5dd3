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
from newsflash.state.event_rollup import flags_of

__all__ = ["fold"]


@dataclass(slots=True)
class _Tally:
    events: int = 0
    flags: int = 0
    delivered_at: int | None = None
    bounce_type: str | None = None
    bounce_status: str | None = None

    def add(self, row: EventRow) -> None:
        """Count one event (a bounce's type and status are set apart, latest last)."""
        self.events += 1
        kind = row.kind
        self.flags |= flags_of(kind, row.machine_open)
        at = row.at
        if (
            kind == "delivered"
            and at is not None
            and (self.delivered_at is None or at < self.delivered_at)
        ):
            self.delivered_at = at


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
        tally.bounce_type, tally.bounce_status = row.bounce_type, row.status
    return [
        Outcome(rid, t.events, t.flags, t.delivered_at, t.bounce_type, t.bounce_status)
        for rid, t in tallies.items()
    ]
