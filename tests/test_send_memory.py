"""What a send holds per partner while it runs: nothing beyond its batch.

Measured with tracemalloc, which counts every allocation Python makes, so the figures are the
same on every run of one Python version; the bounds leave room for another version's sizes.
The roster's SQLite pages are not Python's and so not counted: their cache is capped (a few
MB, subscriber_roster.py), and benchmarks/bench_send.py measures the whole process.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

from newsflash.config import load_config
from newsflash.sending.audience import Audience
from newsflash.state.ledger import LedgerRecipient
from newsflash.subscribers import recipient_id

PARTNERS = 20_000


def big_list(workspace: Path, partners: int = PARTNERS) -> None:
    with open(workspace / "subscribers.csv", "w", encoding="utf-8") as f:
        f.write("email,first_name,last_name,organisation,segments,status\n")
        for i in range(partners):
            f.write(
                f"partner{i:06d}@org{i % 997}.example.org,First{i},Last{i},"
                f"Organisation {i % 997},partners;wg{i % 3},subscribed\n"
            )


def test_the_audience_keeps_per_partner_only_what_a_payload_needs(workspace: Path) -> None:
    big_list(workspace)
    config = load_config(workspace / "config.toml")
    Audience(config)  # the caches a first read fills (segments, domains) are not the audience's
    gc.collect()

    tracemalloc.start()
    try:
        audience = Audience(config)
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # A Person with its id and full name per partner held 357 bytes, its build beside the
    # parsed list peaked at 750 bytes (15 MB here).
    assert held / PARTNERS < 300, f"{held / PARTNERS:.0f} bytes a partner"
    assert peak / PARTNERS < 600, f"peak {peak / PARTNERS:.0f} bytes a partner"
    assert len(audience) == PARTNERS


def audience_peak(workspace: Path, partners: int) -> tuple[int, int]:
    """tracemalloc's peak while the audience is read and frozen, and what it keeps after."""
    big_list(workspace, partners)
    config = load_config(workspace / "config.toml")
    Audience(config).close()  # the caches a first read fills (segments, domains)
    gc.collect()
    tracemalloc.start()
    try:
        audience = Audience(config)
        frozen = sum(1 for _ in audience.members())
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frozen == len(audience) == partners
    audience.close()
    return held, peak


def test_reading_the_audience_takes_the_same_memory_for_four_times_the_partners(
    workspace: Path,
) -> None:
    held_small, peak_small = audience_peak(workspace, 10_000)
    held_large, peak_large = audience_peak(workspace, 40_000)

    # Held in a dict, the audience peaked at 4x for 4x the partners, and kept 300 bytes each.
    assert peak_large / peak_small < 1.25, f"peak {peak_small:,} -> {peak_large:,} bytes"
    assert max(held_small, held_large) < 100_000, f"held {held_small:,}, {held_large:,} bytes"


def test_a_frozen_partner_comes_back_as_the_list_says_now(workspace: Path) -> None:
    audience = Audience(load_config(workspace / "config.toml"))
    anna = next(r for r in audience.members() if r.email == "anna.keller@example.org")
    typed_again = LedgerRecipient(anna.recipient_id, "Anna.Keller@EXAMPLE.org")

    person = audience.person(typed_again)

    assert person is not None
    assert (person.recipient_id, person.email) == (anna.recipient_id, anna.email)
    assert person.recipient_id == recipient_id("anna.keller@example.org")
    assert (person.first_name, person.display_name) == ("Anna", "Anna Keller")
    assert audience.person(LedgerRecipient("0" * 16, "nobody@example.org")) is None
