"""The edition report's figures as main computed them before the rollup, event by event: the
reference tests/test_report_rollup.py holds the rollup to. Kept verbatim (only what changed:
`compute` and the delivery, trust and opens it read from events); the click figures are the
same functions in both, imported from newsflash.reports.figures."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from newsflash.reports.figures import _groups, _hours, _items, _links, _rate, _split_clicks
from newsflash.reports.rows import (
    Delivery,
    EditionInput,
    EditionReport,
    Engagement,
    EventRow,
    Sent,
    Trust,
)


def compute(data: EditionInput) -> EditionReport:
    sent = {r.recipient_id: r for r in data.recipients}
    by_kind: dict[str, list[EventRow]] = defaultdict(list)
    unmatched = 0
    for row in data.events:
        if row.recipient_id in sent:
            by_kind[row.kind].append(row)
        else:
            unmatched += 1
    delivered_at = _first_times(by_kind.get("delivered", ()))
    delivery = _delivery(len(sent), by_kind, delivered_at)
    trust = _trust(by_kind, data.one_click_unsubscribes & sent.keys(), delivery.delivered)
    human, scanners = _split_clicks(by_kind.get("click", []), delivered_at, data)
    engagement = _engagement(data, sent, by_kind.get("open", []), human, delivery.delivered)
    notes = list(data.notes)
    if not data.events:
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
        data.edition_id,
        len(data.events),
        unmatched,
        delivery,
        trust,
        engagement,
        scanners,
        tuple(notes),
    )


def _first_times(rows: Iterable[EventRow]) -> dict[str, int]:
    first: dict[str, int] = {}
    for row in rows:
        if row.at is not None and (
            row.recipient_id not in first or row.at < first[row.recipient_id]
        ):
            first[row.recipient_id] = row.at
    return first


def _bounce_kind(row: EventRow) -> str:
    if (row.bounce_type or "").lower() == "blocked":
        return "blocked"
    return "soft" if (row.status or "").startswith("4") else "hard"


def _delivery(
    sent: int, by_kind: Mapping[str, list[EventRow]], delivered_at: Mapping[str, int]
) -> Delivery:
    bounce: dict[str, str] = {}
    for row in sorted(by_kind.get("bounce", []), key=lambda r: r.at or 0):
        bounce[row.recipient_id] = _bounce_kind(row)  # the latest bounce says the most
    dropped = {r.recipient_id for r in by_kind.get("dropped", [])} - bounce.keys()
    delivered = {r.recipient_id for r in by_kind.get("delivered", [])} | delivered_at.keys()
    delivered -= bounce.keys() | dropped
    deferred = {r.recipient_id for r in by_kind.get("deferred", [])}
    deferred -= bounce.keys() | dropped | delivered
    kinds = Counter(bounce.values())
    known = len(bounce) + len(dropped) + len(delivered) + len(deferred)
    return Delivery(
        sent=sent,
        delivered=len(delivered),
        deferred=len(deferred),
        bounced_hard=kinds["hard"],
        bounced_soft=kinds["soft"],
        blocked=kinds["blocked"],
        dropped=len(dropped),
        not_yet_known=sent - known,
    )


def _trust(
    by_kind: Mapping[str, list[EventRow]], one_click: frozenset[str], delivered: int
) -> Trust:
    spam = {r.recipient_id for r in by_kind.get("spamreport", [])}
    unsub = {
        r.recipient_id
        for kind in ("unsubscribe", "group_unsubscribe")
        for r in by_kind.get(kind, [])
    }
    unsub |= one_click
    return Trust(len(spam), _rate(len(spam), delivered), len(unsub), _rate(len(unsub), delivered))


def _engagement(
    data: EditionInput,
    sent: Mapping[str, Sent],
    opens: Sequence[EventRow],
    clicks: Sequence[EventRow],
    delivered: int,
) -> Engagement:
    openers = {r.recipient_id for r in opens}
    human_openers = {r.recipient_id for r in opens if not r.machine_open}
    clickers = {c.recipient_id for c in clicks}
    links = _links(clicks, data.link_items)
    hours, later = _hours(clicks, data.started_at)
    return Engagement(
        unique_opens=len(openers),
        machine_opens=len(openers - human_openers),
        open_rate=_rate(len(openers), delivered),
        unique_clicks=len(clickers),
        clicks=len(clicks),
        click_rate=_rate(len(clickers), delivered),
        items=_items(clicks, data.link_items, data.item_titles, links),
        links=tuple(links),
        organisations=_groups(sent, clicks, lambda r: r.organisation),
        domains=_groups(sent, clicks, lambda r: r.email.rpartition("@")[2]),
        hours=hours,
        later_clicks=later,
    )
