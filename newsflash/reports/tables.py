"""The report's tables, once: the terminal, the CSV files and the HTML page all show these.

Cells keep their type (a count is an int, a rate a float or None) so each output formats them
its own way: a percentage on screen, a plain decimal in a CSV a spreadsheet can sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from newsflash.reports.figures import (
    GMAIL_SPAM_LIMIT,
    GMAIL_SPAM_WARNING,
    HOURS,
    EditionReport,
    GroupClicks,
)

__all__ = ["Cell", "Table", "comparison_table", "edition_tables", "percent"]

Cell = int | float | str | None
OPENS_LABEL = "unique opens (a lower bound; Apple Mail Privacy Protection inflates it)"


@dataclass(frozen=True)
class Table:
    name: str  # the CSV file's stem
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    rates: frozenset[int] = frozenset()  # columns holding rates


def percent(value: Cell) -> str:
    """A rate for people: '0.25%'; None (nothing to divide by) is 'n/a'."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value * 100:.2f}%"
    return str(value)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _delivery(r: EditionReport) -> Table:
    d = r.delivery
    rows = [
        ("sent (accepted)", d.sent),
        ("delivered", d.delivered),
        ("deferred (still trying)", d.deferred),
        ("bounced: hard", d.bounced_hard),
        ("bounced: soft", d.bounced_soft),
        ("bounced: blocked", d.blocked),
        ("dropped", d.dropped),
        ("not yet known", d.not_yet_known),
    ]
    return Table(
        "delivery",
        f"Delivery of {r.edition_id}",
        ("outcome", "recipients", "share of sent"),
        tuple((label, n, _share(n, d.sent)) for label, n in rows),
        frozenset({2}),
    )


def _trust(reports: Sequence[EditionReport]) -> Table:
    rows = tuple(
        (
            r.edition_id,
            r.trust.spam_reports,
            r.trust.spam_rate,
            r.trust.spam_level,
            r.trust.unsubscribes,
            r.trust.unsubscribe_rate,
        )
        for r in reports
    )
    return Table(
        "trust",
        f"Trust: spam reports against Gmail's {GMAIL_SPAM_LIMIT:.1%} limit (warning from "
        f"{GMAIL_SPAM_WARNING:.1%}) and unsubscribes, of delivered, with previous editions",
        ("edition", "spam reports", "spam rate", "spam level", "unsubscribes", "unsubscribe rate"),
        rows,
        frozenset({2, 5}),
    )


def _engagement(r: EditionReport) -> Table:
    e, s = r.engagement, r.scanners
    rows: list[tuple[Cell, ...]] = [
        (OPENS_LABEL, e.unique_opens, e.open_rate),
        ("of which only machine opens (sg_machine_open)", e.machine_opens, None),
        ("unique clicks (partners who clicked)", e.unique_clicks, e.click_rate),
        ("clicks (all, by partners)", e.clicks, None),
        ("scanner clicks (counted apart, not partners)", s.clicks, None),
    ]
    return Table(
        "engagement",
        "Engagement, of delivered",
        ("measure", "count", "rate"),
        tuple(rows),
        frozenset({2}),
    )


def _groups(name: str, title: str, label: str, groups: Sequence[GroupClicks]) -> Table:
    return Table(
        name,
        title,
        (label, "recipients", "clicked", "clicks", "click rate"),
        tuple(
            (g.name, g.recipients, g.clickers, g.clicks, _share(g.clickers, g.recipients))
            for g in groups
        ),
        frozenset({4}),
    )


def edition_tables(report: EditionReport, previous: Sequence[EditionReport] = ()) -> list[Table]:
    """Every table of one edition's report, in reading order."""
    e = report.engagement
    return [
        _delivery(report),
        _trust([*previous, report]),
        _engagement(report),
        Table(
            "items",
            "Clicks per item (partners who clicked any of its links)",
            ("item", "title", "clicked", "clicks", "most clicked link"),
            tuple((i.item_key, i.title, i.clickers, i.clicks, i.top_link or "") for i in e.items),
        ),
        Table(
            "links",
            "Clicks per link",
            ("link", "item", "clicked", "clicks"),
            tuple((lc.url, lc.item_key, lc.clickers, lc.clicks) for lc in e.links),
        ),
        _groups(
            "organisations", "Clicks per partner organisation", "organisation", e.organisations
        ),
        _groups("domains", "Clicks per email domain", "domain", e.domains),
        Table(
            "hours",
            f"Partners' clicks in each of the first {HOURS} hours after the send started "
            f"({e.later_clicks} later)",
            ("hour", "clicks"),
            tuple((h, n) for h, n in enumerate(e.hours)),
        ),
        Table(
            "scanners",
            f"Security scanners' clicks, counted apart ({report.scanners.recipients} "
            "recipients' messages)",
            ("rule", "clicks"),
            tuple(sorted(report.scanners.by_rule.items())),
        ),
    ]


def comparison_table(reports: Sequence[EditionReport]) -> Table:
    """`newsflash report --all`: one row per sent edition, oldest first."""
    return Table(
        "editions",
        "Editions over time (rates of delivered)",
        (
            "edition",
            "sent",
            "delivered",
            "bounced",
            "spam rate",
            "unsubscribe rate",
            "unique opens",
            "open rate",
            "unique clicks",
            "click rate",
            "scanner clicks",
        ),
        tuple(
            (
                r.edition_id,
                r.delivery.sent,
                r.delivery.delivered,
                r.delivery.bounced,
                r.trust.spam_rate,
                r.trust.unsubscribe_rate,
                r.engagement.unique_opens,
                r.engagement.open_rate,
                r.engagement.unique_clicks,
                r.engagement.click_rate,
                r.scanners.clicks,
            )
            for r in reports
        ),
        frozenset({4, 5, 7, 9}),
    )
