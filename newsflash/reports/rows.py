"""The report's rows in and figures out: what `sources` reads and `figures.compute` returns.

Kept apart from the arithmetic so the tables, the page, the receipts and the tests can name a
figure without importing how it is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "GMAIL_SPAM_LIMIT",
    "GMAIL_SPAM_WARNING",
    "NOT_LISTED",
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
]

GMAIL_SPAM_LIMIT = 0.003  # Gmail's bulk-sender rule: stay below 0.3% of delivered mail
GMAIL_SPAM_WARNING = 0.001  # Google's own advice: act from 0.1%
NOT_LISTED = "(not in subscribers.csv)"


class EventRow(NamedTuple):
    """The few fields of one stored event a report reads (sources pulls them out in SQL)."""

    kind: str
    recipient_id: str
    at: int | None
    url: str | None = None
    useragent: str | None = None
    bounce_type: str | None = None
    status: str | None = None
    machine_open: bool = False


class Outcome(NamedTuple):
    """What SendGrid reported of one recipient, all events together: the event store's
    `recipient_facts` row (rolled up as events arrive), or `outcomes.fold` of its events.
    `flags` holds state.event_rollup's bits (DELIVERED, BOUNCED, OPENED...)."""

    recipient_id: str
    events: int  # how many events of the kinds a report reads
    flags: int
    delivered_at: int | None  # the first delivery's time
    bounce_type: str | None  # of the latest bounce
    bounce_status: str | None


class Sent(NamedTuple):
    """One recipient the ledger says SendGrid accepted, with what subscribers.csv says now."""

    recipient_id: str
    email: str
    organisation: str = NOT_LISTED


@dataclass(frozen=True)
class EditionInput:
    """Everything the report of one edition is computed from; built by `reports.sources`."""

    edition_id: str
    started_at: int | None  # when the send started (Unix seconds), the clock of the 72 h
    recipients: Sequence[Sent]
    events: Sequence[EventRow]
    link_items: Mapping[str, str] = field(default_factory=dict)  # url -> item key
    item_titles: Mapping[str, str] = field(default_factory=dict)  # item key -> title
    one_click_unsubscribes: frozenset[str] = frozenset()  # recipient ids, from suppressions
    notes: tuple[str, ...] = ()
    # Each recipient's events rolled up; when given, `events` need hold only the clicks (the
    # one kind counted event by event). None: `events` holds every event and is folded here.
    outcomes: Sequence[Outcome] | None = None


@dataclass(frozen=True)
class Delivery:
    sent: int
    delivered: int
    deferred: int
    bounced_hard: int
    bounced_soft: int
    blocked: int
    dropped: int
    not_yet_known: int

    @property
    def bounced(self) -> int:
        return self.bounced_hard + self.bounced_soft + self.blocked


@dataclass(frozen=True)
class Trust:
    spam_reports: int
    spam_rate: float | None  # of delivered; None when nothing is known delivered
    unsubscribes: int
    unsubscribe_rate: float | None

    @property
    def spam_level(self) -> str:
        """'ok', 'warning' (from 0.1%) or 'over limit' (from Gmail's 0.3%); 'n/a' unknown."""
        if self.spam_rate is None:
            return "n/a"
        if self.spam_rate >= GMAIL_SPAM_LIMIT:
            return "over limit"
        return "warning" if self.spam_rate >= GMAIL_SPAM_WARNING else "ok"


@dataclass(frozen=True)
class LinkClicks:
    url: str
    item_key: str
    clicks: int
    clickers: int


@dataclass(frozen=True)
class ItemClicks:
    """What a receipt tells a contributor: counts only, nothing about who."""

    item_key: str
    title: str
    clicks: int
    clickers: int
    top_link: str | None


@dataclass(frozen=True)
class GroupClicks:
    name: str
    recipients: int
    clickers: int
    clicks: int


@dataclass(frozen=True)
class Scanners:
    clicks: int
    recipients: int  # recipients with at least one scanner click
    by_rule: Mapping[str, int]


@dataclass(frozen=True)
class Engagement:
    unique_opens: int
    machine_opens: int  # recipients whose only opens SendGrid marked sg_machine_open
    open_rate: float | None
    unique_clicks: int
    clicks: int
    click_rate: float | None
    items: tuple[ItemClicks, ...]
    links: tuple[LinkClicks, ...]
    organisations: tuple[GroupClicks, ...]
    domains: tuple[GroupClicks, ...]
    hours: tuple[int, ...]  # human clicks in each of the first 72 hours after the send started
    later_clicks: int


@dataclass(frozen=True)
class EditionReport:
    edition_id: str
    events: int
    unmatched_events: int
    delivery: Delivery
    trust: Trust
    engagement: Engagement
    scanners: Scanners
    notes: tuple[str, ...]

    def item_clicks(self, item_key: str) -> ItemClicks:
        """One item's clicks (zero when nobody clicked), for a contributor's receipt."""
        for item in self.engagement.items:
            if item.item_key == item_key:
                return item
        return ItemClicks(item_key, item_key, 0, 0, None)
