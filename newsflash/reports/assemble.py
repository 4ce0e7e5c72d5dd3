"""The report's figures made from counts, whichever way they were counted.

A report is counted in one of two ways: by SQLite over the event store's rollup
(`reports.sql_figures`, the usual way) or in Python over rows (`figures.compute`: a store not
rolled up yet, and the tests that feed rows). Both end in the same few counts (recipients per
set of flags, clicks and clickers per link, item and group, clicks per hour), and the figures,
their order and their notes are made from those counts here, once, so the two ways cannot
drift apart in how a figure is labelled, rounded or sorted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from newsflash.reports.rows import Delivery, GroupClicks, ItemClicks, LinkClicks
from newsflash.state.event_rollup import BOUNCED, DEFERRED, DELIVERED, DROPPED

__all__ = [
    "HOURS",
    "NO_ITEM",
    "NO_ORGANISATION",
    "SWEEP_LINKS",
    "count_of",
    "delivery_of",
    "group_rows",
    "hour_buckets",
    "item_rows",
    "link_rows",
    "notes_of",
    "rate",
    "sweep_needs",
]

HOURS = 72
SWEEP_LINKS = 3
NO_ITEM = "(not an item's link)"
NO_ORGANISATION = "(no organisation)"
_PRECEDENCE = ((BOUNCED, "bounced"), (DROPPED, "dropped"), (DELIVERED, "delivered"),
               (DEFERRED, "deferred"))  # fmt: skip


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def count_of(flags: Mapping[int, int], bit: int) -> int:
    """How many recipients' flags hold `bit`, from the count of each distinct set of flags."""
    return sum(n for bits, n in flags.items() if bits & bit)


def _bounce_kind(bounce_type: str | None, bounce_status: str | None) -> str:
    if (bounce_type or "").lower() == "blocked":
        return "blocked"
    return "soft" if (bounce_status or "").startswith("4") else "hard"


def _strongest(flags: int) -> str:
    return next((name for bit, name in _PRECEDENCE if flags & bit), "not yet known")


def delivery_of(
    sent: int, flags: Mapping[int, int], bounces: Mapping[tuple[str | None, str | None], int]
) -> Delivery:
    """The strongest outcome of each recipient (bounce, then drop, delivery, deferral), from
    the count of each distinct set of flags and of each bounce's (type, status)."""
    strongest: Counter[str] = Counter()
    for bits, n in flags.items():
        strongest[_strongest(bits)] += n
    kinds: Counter[str] = Counter()
    for (bounce_type, status), n in bounces.items():
        kinds[_bounce_kind(bounce_type, status)] += n
    known = strongest.total() - strongest["not yet known"]
    return Delivery(
        sent=sent,
        delivered=strongest["delivered"],
        deferred=strongest["deferred"],
        bounced_hard=kinds["hard"],
        bounced_soft=kinds["soft"],
        blocked=kinds["blocked"],
        dropped=strongest["dropped"],
        not_yet_known=sent - known,
    )


def sweep_needs(link_items: Mapping[str, str]) -> int:
    """How many distinct links clicked soon after delivery make a sweep: `SWEEP_LINKS`, or
    every link of the edition when it has fewer, but at least two."""
    return max(2, min(SWEEP_LINKS, len(set(link_items)) or SWEEP_LINKS))


def link_rows(
    counts: Iterable[tuple[str, int, int]], link_items: Mapping[str, str]
) -> list[LinkClicks]:
    """(url, clicks, clickers) per link, most clickers first, each with its item."""
    return sorted(
        (LinkClicks(url, link_items.get(url, NO_ITEM), n, who) for url, n, who in counts),
        key=lambda lc: (-lc.clickers, -lc.clicks, lc.url),
    )


def item_rows(
    clicks: Mapping[str, int],
    clickers: Mapping[str, int],
    titles: Mapping[str, str],
    links: Sequence[LinkClicks],
) -> tuple[ItemClicks, ...]:
    """Every item of the edition, clicked or not, then the clicks on no item's link; `links`
    best first, so each item's first is its most clicked."""
    top: dict[str, str] = {}
    for lc in links:
        top.setdefault(lc.item_key, lc.url)
    keys = list(titles) + ([NO_ITEM] if NO_ITEM in clicks else [])
    result = [
        ItemClicks(k, titles.get(k, k), clicks.get(k, 0), clickers.get(k, 0), top.get(k))
        for k in keys
    ]
    return tuple(sorted(result, key=lambda i: (i.item_key == NO_ITEM, -i.clickers, -i.clicks)))


def group_rows(
    members: Counter[str], clickers: Mapping[str, int], clicks: Mapping[str, int]
) -> tuple[GroupClicks, ...]:
    """Recipients, clickers and clicks per group (a group named "" joins NO_ORGANISATION, as
    a clicker's does), most clickers first."""
    if "" in members:
        members[NO_ORGANISATION] += members.pop("")
    rows = (GroupClicks(g, n, clickers.get(g, 0), clicks.get(g, 0)) for g, n in members.items())
    return tuple(sorted(rows, key=lambda g: (-g.clickers, -g.clicks, g.name)))


def hour_buckets(per_hour: Iterable[tuple[int, int]]) -> tuple[tuple[int, ...], int]:
    """(hour since the send started, clicks) as the first HOURS hours and how many later;
    a negative hour (before the send) counts in neither."""
    buckets = [0] * HOURS
    later = 0
    for hour, n in per_hour:
        if 0 <= hour < HOURS:
            buckets[hour] += n
        elif hour >= HOURS:
            later += n
    return tuple(buckets), later


def notes_of(notes: Iterable[str], events: int, unmatched: int) -> tuple[str, ...]:
    """The notes read with the state, then what the counts themselves say."""
    found = list(notes)
    if not events:
        found.append(
            "no events recorded for this edition: SendGrid's Event Webhook has not reported "
            "(newsflash serve), or this was an outbox rehearsal; only the ledger's counts show"
        )
    if unmatched:
        found.append(
            f"{unmatched} event(s) name a recipient this edition's ledger did not send to; "
            "they are left out of every figure"
        )
    return tuple(found)
