"""Fields of a SendGrid event that no real event carries must not stop its batch from being
stored: the event is kept (its raw JSON whole) with the odd field read as missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsflash.state.events import EventStore, parse_event

ODD_TIMES: dict[str, Any] = {
    "beyond 64 bits": 10**30,
    "below 64 bits": -(10**30),
    "just past the largest SQLite integer": 2**63,
    "true": True,
    "a float": 1_780_000_000.5,
    "text": "1780000000",
    "a list": [1780000000],
}


@pytest.mark.parametrize("stamp", ODD_TIMES.values(), ids=ODD_TIMES.keys())
def test_an_event_with_a_timestamp_sqlite_cannot_hold_is_stored_with_its_batch_without_a_time(
    tmp_path: Path, stamp: Any
) -> None:
    odd = {"event": "delivered", "email": "a@example.org", "timestamp": stamp,
           "sg_event_id": "odd", "edition": "2022-02"}  # fmt: skip
    fine = {"event": "delivered", "email": "b@example.org", "timestamp": 1_780_000_000,
            "sg_event_id": "fine", "edition": "2022-02"}  # fmt: skip
    store = EventStore.in_state(tmp_path)
    assert store.record([parse_event(odd), parse_event(fine)]) == 2
    assert store.raw("odd") == odd
    assert store.counts("2022-02") == {"delivered": 2}
    store.close()
    assert parse_event(odd).happened_at is None


def test_the_largest_and_smallest_times_sqlite_holds_are_kept(tmp_path: Path) -> None:
    store = EventStore.in_state(tmp_path)
    for n, stamp in enumerate((2**63 - 1, -(2**63))):
        event = parse_event({"event": "open", "timestamp": stamp, "sg_event_id": str(n)})
        assert event.happened_at == stamp
        assert store.record([event]) == 1
    store.close()
