"""What each edition did, read from local state only: the report, and (later) receipts.

`edition_report` is the one call everything else builds on; `item_clicks` is the question a
contributor's receipt asks ("how did my item do?"), answered with counts only.
"""

from __future__ import annotations

from newsflash.config import Config
from newsflash.reports.figures import EditionReport, ItemClicks, compute
from newsflash.reports.sources import (
    NoSendError,
    ReportError,
    cycles_left_alone,
    edition_input,
    read_known,
    sent_editions,
)
from newsflash.reports.sql_figures import counted_in_sqlite

__all__ = [
    "EditionReport",
    "ItemClicks",
    "NoSendError",
    "ReportError",
    "all_reports",
    "edition_report",
    "item_clicks",
    "previous_reports",
]


def edition_report(
    config: Config, edition_id: str | None = None, ledger_name: str | None = None
) -> EditionReport:
    """One edition's report; without an id, the last edition that reached anyone."""
    if edition_id is None:
        sent = sent_editions(config, ledger_name)
        if not sent:
            raise NoSendError("no edition has reached anyone yet: there is nothing to report")
        edition_id = sent[-1]
    return _report(config, edition_id, ledger_name)


def all_reports(config: Config, ledger_name: str | None = None) -> list[EditionReport]:
    """Every sent edition's report, oldest first, for comparing editions over time."""
    return [_report(config, e, ledger_name) for e in sent_editions(config, ledger_name)]


def item_clicks(
    config: Config, edition_id: str, item_key: str, ledger_name: str | None = None
) -> ItemClicks:
    """How many partners clicked one item's links in one edition, and its most-clicked link."""
    return edition_report(config, edition_id, ledger_name).item_clicks(item_key)


def previous_reports(
    config: Config, edition_id: str, ledger_name: str | None = None, limit: int = 5
) -> list[EditionReport]:
    """The reports of up to `limit` editions sent before this one, oldest first."""
    earlier = [e for e in sent_editions(config, ledger_name) if e < edition_id][-limit:]
    return [_report(config, e, ledger_name) for e in earlier]


def _report(config: Config, edition_id: str, ledger_name: str | None) -> EditionReport:
    """Counted by SQLite from the event store's rollup; from a store not rolled up yet (or
    none), row by row in Python, the same figures. Either under one pause of the cycle
    collector, so the rows read are freed before it runs again (sources.cycles_left_alone
    says what that saves)."""
    with cycles_left_alone():
        known = read_known(config, edition_id, ledger_name)
        report = counted_in_sqlite(config, known)
        return report if report is not None else compute(edition_input(config, known))
