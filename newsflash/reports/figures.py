"""The edition report as pure arithmetic over rows: who was sent it, what SendGrid said.

It reads one Outcome per recipient (every event of theirs rolled up) and each click on its
own; the clicks are the one kind counted event by event (per link, per hour, the scanner
rules).

Every figure counts *recipients* (an address the ledger says SendGrid accepted), never raw
events, because SendGrid reports one message several times (two opens, a redelivered batch);
total clicks are the one exception and say so. Events for a recipient the ledger does not know
(another edition's, a hand-made test) are counted apart and left out of every figure.

Delivery is one outcome per recipient, the strongest SendGrid reported, so the rows add up to
`sent`: a bounce beats a drop, a drop beats a delivery (a late asynchronous bounce does follow
a delivery), a delivery beats a deferral, and a recipient with none of these is "not yet
known". A bounce is *blocked* when SendGrid's `type` says so, *soft* when its SMTP `status` is
4.x.x (the receiving server gave up for now), *hard* otherwise.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import compress, repeat
from operator import and_, attrgetter

from newsflash.reports.assemble import (
    HOURS,
    NO_ITEM,
    NO_ORGANISATION,
    SWEEP_LINKS,
    count_of,
    delivery_of,
    group_rows,
    hour_buckets,
    item_rows,
    link_rows,
    notes_of,
    rate,
    sweep_needs,
)
from newsflash.reports.outcomes import fold
from newsflash.reports.rows import (
    GMAIL_SPAM_LIMIT,
    GMAIL_SPAM_WARNING,
    NOT_LISTED,
    Delivery,
    EditionInput,
    EditionReport,
    Engagement,
    EventRow,
    GroupClicks,
    ItemClicks,
    LinkClicks,
    Outcome,
    Scanners,
    Sent,
    Trust,
)
from newsflash.state.event_rollup import BOUNCED, HUMAN_OPENED, OPENED, SPAM, UNSUBSCRIBED

__all__ = [
    "GMAIL_SPAM_LIMIT",
    "GMAIL_SPAM_WARNING",
    "HOURS",
    "NOT_LISTED",
    "NO_ITEM",
    "NO_ORGANISATION",
    "SCANNER_AGENTS",
    "SWEEP_LINKS",
    "SWEEP_SECONDS",
    "Delivery",
    "EditionInput",
    "EditionReport",
    "Engagement",
    "EventRow",
    "GroupClicks",
    "ItemClicks",
    "LinkClicks",
    "Outcome",
    "Scanners",
    "Sent",
    "Trust",
    "compute",
    "scanner_rule",
]

SWEEP_SECONDS = 60
# Link scanners that announce themselves (mail gateways, link previewers, HTTP libraries).
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|urldefense|safelinks|forcepoint|trend ?micro|sophos|"
    r"symantec|fireeye|cisco|ironport|bingpreview|headlesschrome|phantomjs|python-requests|"
    r"python-urllib|go-http-client|curl/|wget/|libwww|okhttp|java/|scanner|bot\b|crawler|spider",
    re.IGNORECASE,
)
_rate = rate  # the name tests/report_reference.py imports


def compute(data: EditionInput) -> EditionReport:
    """The whole report of one edition; pure, so tests feed rows and assert every figure.

    A big edition holds 100k outcomes and 50k clicks: their columns are read with C-level
    maps (operator's getters, Counter, itertools.compress) rather than a Python loop or
    generator per row, and every figure of the flags comes from one count of each distinct
    set of flags (a few dozen), not from a pass over the recipients each."""
    sent = {r.recipient_id: r for r in data.recipients}
    outcomes = fold(data.events) if data.outcomes is None else data.outcomes
    mine = _sent_only(outcomes, sent)
    events = sum(map(_EVENTS, outcomes))
    unmatched = 0 if mine is outcomes else events - sum(map(_EVENTS, mine))
    clicks = [c for c in data.events if c.kind == "click" and c.recipient_id in sent]
    delivered_at = dict(zip(map(_RID, mine), map(_DELIVERED_AT, mine), strict=True))
    flags = Counter(map(_FLAGS, mine))
    delivery = _delivery(len(sent), mine, flags)
    trust = _trust(mine, flags, data.one_click_unsubscribes & sent.keys(), delivery.delivered)
    human, scanners = _split_clicks(clicks, delivered_at, data)
    engagement = _engagement(data, sent, flags, human, delivery.delivered)
    notes = notes_of(data.notes, events, unmatched)
    return EditionReport(
        data.edition_id, events, unmatched, delivery, trust, engagement, scanners, notes
    )


_RID = attrgetter("recipient_id")
_EVENTS = attrgetter("events")
_FLAGS = attrgetter("flags")
_DELIVERED_AT = attrgetter("delivered_at")
_AT = attrgetter("at")
_BOUNCE = attrgetter("bounce_type", "bounce_status")


def _sent_only(outcomes: Sequence[Outcome], sent: Mapping[str, Sent]) -> Sequence[Outcome]:
    """The outcomes of recipients this edition's ledger sent to: the sequence itself when
    that is every one of them (the usual case), which saves a copy of 100k rows."""
    if all(map(sent.__contains__, map(_RID, outcomes))):
        return outcomes
    return [o for o in outcomes if o.recipient_id in sent]


def _having(outcomes: Sequence[Outcome], bit: int) -> Iterator[Outcome]:
    """The outcomes whose flags hold `bit`."""
    return compress(outcomes, map(and_, map(_FLAGS, outcomes), repeat(bit)))


def _delivery(sent: int, outcomes: Sequence[Outcome], flags: Counter[int]) -> Delivery:
    """The strongest outcome of each recipient: bounce, then drop, delivery, deferral. Counted
    by distinct set of flags, and bounces by distinct type and status, not one by one."""
    return delivery_of(sent, flags, Counter(map(_BOUNCE, _having(outcomes, BOUNCED))))


def _trust(
    outcomes: Sequence[Outcome], flags: Counter[int], one_click: frozenset[str], delivered: int
) -> Trust:
    """Unsubscribes join SendGrid's (list and group) with newsflash's own one-click ones."""
    spam = count_of(flags, SPAM)
    unsub = len(set(map(_RID, _having(outcomes, UNSUBSCRIBED))) | one_click)
    return Trust(spam, _rate(spam, delivered), unsub, _rate(unsub, delivered))


@functools.lru_cache(maxsize=4096)
def _scanner_agent(useragent: str) -> bool:
    """Cached: an edition's clicks come from a few hundred user agents, and the pattern's
    search cost 0.3 s over 50k clicks."""
    return SCANNER_AGENTS.search(useragent) is not None


def scanner_rule(
    click: EventRow, delivered: int | None, started_at: int | None, swept: bool
) -> str | None:
    """Which rule marks a click as a security scanner's, or None for a partner's click.

    Rules, in the order they are tried (a click counts under the first that matches):

    * ``user agent``: the click's user agent names a known scanner, gateway or HTTP library
      (`SCANNER_AGENTS`): Barracuda, Mimecast, Proofpoint, Safe Links, curl, python-requests...
    * ``before delivery``: the click happened before the recipient's delivery was reported, or
      before the send started: no person clicks a message they do not have yet.
    * ``link sweep``: the recipient's message had several distinct links (`SWEEP_LINKS`, or
      every link of the edition when it has fewer, at least two) clicked within
      `SWEEP_SECONDS` of its delivery: a gateway opening every link to check it, not a reader.
    """
    if click.useragent and _scanner_agent(click.useragent):
        return "user agent"
    at = click.at
    early = at is not None and (
        (delivered is not None and at < delivered) or (started_at is not None and at < started_at)
    )
    if early:
        return "before delivery"
    if swept:
        return "link sweep"
    return None


def _split_clicks(
    clicks: Sequence[EventRow], delivered_at: Mapping[str, int | None], data: EditionInput
) -> tuple[list[EventRow], Scanners]:
    """Partners' clicks on one side, scanners' counted apart by rule. Each click's delivery
    is looked up once and its sweep window tested once, in comprehensions rather than a
    function call per click: 0.14 s -> 0.10 s for 50k clicks (CPU, the fastest of 5 and 9)."""
    needed = sweep_needs(data.link_items)
    delivered = list(map(delivered_at.get, map(_RID, clicks)))
    windows = [
        d is not None and at is not None and 0 <= at - d <= SWEEP_SECONDS
        for at, d in zip(map(_AT, clicks), delivered, strict=True)
    ]
    fast_links: dict[str, set[str]] = defaultdict(set)
    for c in compress(clicks, windows):
        fast_links[c.recipient_id].add(c.url or "")
    swept = {rid for rid, urls in fast_links.items() if len(urls) >= needed}
    started_at = data.started_at
    rules = [
        scanner_rule(c, d, started_at, w and c.recipient_id in swept)
        for c, d, w in zip(clicks, delivered, windows, strict=True)
    ]
    human = [c for c, rule in zip(clicks, rules, strict=True) if rule is None]
    by_rule = Counter(filter(None, rules))  # each rule in the order it is first met
    flagged = {c.recipient_id for c, rule in zip(clicks, rules, strict=True) if rule is not None}
    return human, Scanners(by_rule.total(), len(flagged), dict(by_rule))


def _engagement(
    data: EditionInput,
    sent: Mapping[str, Sent],
    flags: Counter[int],
    clicks: Sequence[EventRow],
    delivered: int,
) -> Engagement:
    openers = count_of(flags, OPENED)
    human_openers = count_of(flags, HUMAN_OPENED)
    clickers = set(map(_RID, clicks))
    links = _links(clicks, data.link_items)
    hours, later = _hours(clicks, data.started_at)
    return Engagement(
        unique_opens=openers,
        machine_opens=openers - human_openers,
        open_rate=_rate(openers, delivered),
        unique_clicks=len(clickers),
        clicks=len(clicks),
        click_rate=_rate(len(clickers), delivered),
        items=_items(clicks, data.link_items, data.item_titles, links),
        links=tuple(links),
        organisations=_groups(sent, clicks, attrgetter("organisation")),  # C, not a lambda
        domains=_groups(sent, clicks, lambda r: r.email.rpartition("@")[2]),
        hours=hours,
        later_clicks=later,
    )


def _links(clicks: Sequence[EventRow], link_items: Mapping[str, str]) -> list[LinkClicks]:
    total: Counter[str] = Counter()
    who: dict[str, set[str]] = defaultdict(set)
    for c in clicks:
        url = c.url or ""
        total[url] += 1
        who[url].add(c.recipient_id)
    return link_rows(((u, n, len(who[u])) for u, n in total.items()), link_items)


def _items(
    clicks: Sequence[EventRow],
    link_items: Mapping[str, str],
    titles: Mapping[str, str],
    links: Sequence[LinkClicks],
) -> tuple[ItemClicks, ...]:
    """Every item of the edition, clicked or not, then the clicks on no item's link."""
    who: dict[str, set[str]] = defaultdict(set)
    total: Counter[str] = Counter()
    for c in clicks:
        key = link_items.get(c.url or "", NO_ITEM)
        who[key].add(c.recipient_id)
        total[key] += 1
    return item_rows(total, {k: len(rids) for k, rids in who.items()}, titles, links)


def _groups(
    sent: Mapping[str, Sent], clicks: Sequence[EventRow], key: Callable[[Sent], str]
) -> tuple[GroupClicks, ...]:
    """Recipients, clickers and clicks per group; `key` is asked once per recipient and once
    per clicker, and the clicks counted through a dict of each clicker's group."""
    members: Counter[str] = Counter(map(key, sent.values()))
    rids = list(map(_RID, clicks))
    group_of = {rid: key(sent[rid]) or NO_ORGANISATION for rid in set(rids)}
    return group_rows(members, Counter(group_of.values()), Counter(map(group_of.__getitem__, rids)))


def _hours(clicks: Sequence[EventRow], started_at: int | None) -> tuple[tuple[int, ...], int]:
    if started_at is None:
        return hour_buckets(())
    hours = Counter((c.at - started_at) // 3600 for c in clicks if c.at is not None)
    return hour_buckets(hours.items())
