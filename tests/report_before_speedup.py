"""newsflash/reports/figures.py as it stood before the report was made faster (issue 11),
verbatim below this docstring: tests/test_report_speed.py holds the faster figures to it."""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter

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
from newsflash.state.event_rollup import (
    BOUNCED,
    DEFERRED,
    DELIVERED,
    DROPPED,
    HUMAN_OPENED,
    OPENED,
    SPAM,
    UNSUBSCRIBED,
)

__all__ = [
    "GMAIL_SPAM_LIMIT",
    "GMAIL_SPAM_WARNING",
    "HOURS",
    "NOT_LISTED",
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

HOURS = 72
SWEEP_SECONDS = 60
SWEEP_LINKS = 3
# Link scanners that announce themselves (mail gateways, link previewers, HTTP libraries).
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|urldefense|safelinks|forcepoint|trend ?micro|sophos|"
    r"symantec|fireeye|cisco|ironport|bingpreview|headlesschrome|phantomjs|python-requests|"
    r"python-urllib|go-http-client|curl/|wget/|libwww|okhttp|java/|scanner|bot\b|crawler|spider",
    re.IGNORECASE,
)
NO_ITEM = "(not an item's link)"
NO_ORGANISATION = "(no organisation)"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def compute(data: EditionInput) -> EditionReport:
    """The whole report of one edition; pure, so tests feed rows and assert every figure."""
    sent = {r.recipient_id: r for r in data.recipients}
    outcomes = fold(data.events) if data.outcomes is None else data.outcomes
    mine = [o for o in outcomes if o.recipient_id in sent]
    events = sum(o.events for o in outcomes)
    unmatched = events - sum(o.events for o in mine)
    clicks = [c for c in data.events if c.kind == "click" and c.recipient_id in sent]
    delivered_at = {o.recipient_id: o.delivered_at for o in mine if o.delivered_at is not None}
    delivery = _delivery(len(sent), mine)
    trust = _trust(mine, data.one_click_unsubscribes & sent.keys(), delivery.delivered)
    human, scanners = _split_clicks(clicks, delivered_at, data)
    engagement = _engagement(data, sent, mine, human, delivery.delivered)
    notes = list(data.notes)
    if not events:
        notes.append(
            "no events recorded for this edition: SendGrid's Event Webhook has not reported "
            "(newsflash serve), or this was an outbox rehearsal; only the ledger's counts show"
        )
    if unmatched:
        notes.append(
            f"{unmatched} event(s) name a recipient this edition's ledger did not send to; "
            "they are left out of every figure"
        )
    return EditionReport(
        data.edition_id, events, unmatched, delivery, trust, engagement, scanners, tuple(notes)
    )


def _bounce_kind(outcome: Outcome) -> str:
    if (outcome.bounce_type or "").lower() == "blocked":
        return "blocked"
    return "soft" if (outcome.bounce_status or "").startswith("4") else "hard"


_PRECEDENCE = ((BOUNCED, "bounced"), (DROPPED, "dropped"), (DELIVERED, "delivered"),
               (DEFERRED, "deferred"))  # fmt: skip
_DELIVERY_BITS = BOUNCED | DROPPED | DELIVERED | DEFERRED


def _strongest(flags: int) -> str:
    return next((name for bit, name in _PRECEDENCE if flags & bit), "not yet known")


def _delivery(sent: int, outcomes: Sequence[Outcome]) -> Delivery:
    """The strongest outcome of each recipient: bounce, then drop, delivery, deferral. Counted
    by distinct combination of bits (at most 16), not recipient by recipient."""
    strongest: Counter[str] = Counter()
    for bits, n in Counter(o.flags & _DELIVERY_BITS for o in outcomes).items():
        strongest[_strongest(bits)] += n
    kinds = Counter(_bounce_kind(o) for o in outcomes if o.flags & BOUNCED)
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


def _trust(outcomes: Sequence[Outcome], one_click: frozenset[str], delivered: int) -> Trust:
    """Unsubscribes join SendGrid's (list and group) with newsflash's own one-click ones."""
    spam = sum(1 for o in outcomes if o.flags & SPAM)
    unsub = len({o.recipient_id for o in outcomes if o.flags & UNSUBSCRIBED} | one_click)
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


def _in_sweep_window(click: EventRow, delivered: int | None) -> bool:
    return (
        delivered is not None
        and click.at is not None
        and 0 <= click.at - delivered <= SWEEP_SECONDS
    )


def _split_clicks(
    clicks: Sequence[EventRow], delivered_at: Mapping[str, int], data: EditionInput
) -> tuple[list[EventRow], Scanners]:
    """Partners' clicks on one side, scanners' counted apart by rule."""
    edition_links = len(set(data.link_items)) or SWEEP_LINKS
    needed = max(2, min(SWEEP_LINKS, edition_links))
    fast_links: dict[str, set[str]] = defaultdict(set)
    for c in clicks:
        if _in_sweep_window(c, delivered_at.get(c.recipient_id)):
            fast_links[c.recipient_id].add(c.url or "")
    swept = {rid for rid, urls in fast_links.items() if len(urls) >= needed}
    human: list[EventRow] = []
    rules: Counter[str] = Counter()
    flagged: set[str] = set()
    for c in clicks:
        delivered = delivered_at.get(c.recipient_id)
        sweep = c.recipient_id in swept and _in_sweep_window(c, delivered)
        rule = scanner_rule(c, delivered, data.started_at, sweep)
        if rule is None:
            human.append(c)
        else:
            rules[rule] += 1
            flagged.add(c.recipient_id)
    return human, Scanners(sum(rules.values()), len(flagged), dict(rules))


def _engagement(
    data: EditionInput,
    sent: Mapping[str, Sent],
    outcomes: Sequence[Outcome],
    clicks: Sequence[EventRow],
    delivered: int,
) -> Engagement:
    openers = sum(1 for o in outcomes if o.flags & OPENED)
    human_openers = sum(1 for o in outcomes if o.flags & HUMAN_OPENED)
    clickers = {c.recipient_id for c in clicks}
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
    return sorted(
        (LinkClicks(u, link_items.get(u, NO_ITEM), n, len(who[u])) for u, n in total.items()),
        key=lambda lc: (-lc.clickers, -lc.clicks, lc.url),
    )


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
    top: dict[str, str] = {}
    for lc in links:  # already best first
        top.setdefault(lc.item_key, lc.url)
    keys = list(titles) + ([NO_ITEM] if NO_ITEM in total else [])
    result = [ItemClicks(k, titles.get(k, k), total[k], len(who[k]), top.get(k)) for k in keys]
    return tuple(sorted(result, key=lambda i: (i.item_key == NO_ITEM, -i.clickers, -i.clicks)))


def _groups(
    sent: Mapping[str, Sent], clicks: Sequence[EventRow], key: Callable[[Sent], str]
) -> tuple[GroupClicks, ...]:
    members: Counter[str] = Counter(map(key, sent.values()))
    if "" in members:
        members[NO_ORGANISATION] += members.pop("")
    who: dict[str, set[str]] = defaultdict(set)
    total: Counter[str] = Counter()
    for c in clicks:
        group = key(sent[c.recipient_id]) or NO_ORGANISATION
        who[group].add(c.recipient_id)
        total[group] += 1
    rows = (GroupClicks(g, n, len(who[g]), total[g]) for g, n in members.items())
    return tuple(sorted(rows, key=lambda g: (-g.clickers, -g.clicks, g.name)))


def _hours(clicks: Sequence[EventRow], started_at: int | None) -> tuple[tuple[int, ...], int]:
    buckets = [0] * HOURS
    later = 0
    if started_at is None:
        return tuple(buckets), 0
    for c in clicks:
        if c.at is None:
            continue
        hour = (c.at - started_at) // 3600
        if 0 <= hour < HOURS:
            buckets[hour] += 1
        elif hour >= HOURS:
            later += 1
    return tuple(buckets), later
