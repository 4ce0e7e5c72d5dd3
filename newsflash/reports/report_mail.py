"""The report job's mail: the report to the reviewers, and to each contact how their item did.

Due once `[schedule.report] after_send` has passed since the last sent edition's send began;
each note is sent once (receipts.ReceiptLog), so the job may look every hour and a restarted
scheduler repeats nothing. The reviewers get the terminal tables as text; the HTML page is
written to state/reports/<edition>.html and its path named in the mail (notices are plain
text: attaching it needs the transports to take an attachment).
"""

from __future__ import annotations

import datetime as dt
import io
from functools import partial
from pathlib import Path

from rich.console import Console

from newsflash.config import Config, duration_seconds
from newsflash.items import Item
from newsflash.reports import EditionReport, edition_report, previous_reports
from newsflash.reports.html_page import render_page, write_page
from newsflash.reports.receipts import (
    ReceiptLog,
    Sent,
    archive_url,
    edition_items,
    receipt_log,
    recipients_of,
    send_once,
)
from newsflash.reports.sources import NoSendError, resolve_ledger, sent_editions
from newsflash.reports.tables import edition_tables
from newsflash.reports.terminal import print_notes, print_tables
from newsflash.state.ledger import Ledger
from newsflash.transports.base import Transport

__all__ = ["due_report", "mail_report", "report_text"]

_EVERYONE = "*"  # the item key of the reviewers' report, which is about no one item


def _started(config: Config, edition_id: str) -> dt.datetime | None:
    _, path = resolve_ledger(config, None)
    with Ledger(path) as ledger:
        text = ledger.status(edition_id).started_at
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def due_report(config: Config, now: dt.datetime) -> str | None:
    """The last sent edition, if `after_send` has passed since its send began; else None.

    Only the last one: turning the job on must not mail a report for every past edition."""
    job = config.model.schedule.report
    if job is None:
        return None
    try:
        sent = sent_editions(config)
    except NoSendError:  # no ledger yet: nothing was ever sent
        return None
    if not sent:
        return None
    started = _started(config, sent[-1])
    if started is None:
        return None
    wait = dt.timedelta(seconds=duration_seconds(job.after_send))
    return sent[-1] if now >= started + wait else None


def report_text(config: Config, report: EditionReport, html_path: Path) -> str:
    """The report as the terminal shows it, for a plain-text mail."""
    edition_id = report.edition_id
    tables = edition_tables(report, previous_reports(config, edition_id))
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None, force_terminal=False)
    print_tables(console, tables)
    print_notes(console, report)
    write_page(html_path, render_page(report, tables))
    return (
        f"The report on edition {edition_id}, from the ledger, SendGrid's events and the "
        f"suppressions.\nThe page with charts: {html_path}\n"
        f"(or run `newsflash report {edition_id} --html FILE`).\n\n{out.getvalue()}"
    )


def _clicks_text(config: Config, report: EditionReport, item: Item) -> tuple[str, str]:
    edition_id = report.edition_id
    clicks = report.item_clicks(item.key)
    n = clicks.clickers
    lines = [
        f"Your item '{item.title}' in edition {edition_id}: {n} partner"
        f"{' has' if n == 1 else 's have'} clicked its links ({clicks.clicks} clicks in all).",
    ]
    if clicks.top_link:
        lines.append(f"The link clicked most: {clicks.top_link}")
    lines += [
        "",
        f"The item in the web archive: {archive_url(config, edition_id, item)}",
        "",
        "Counts only; security scanners' automatic clicks are not counted. No partner is named.",
    ]
    nl = config.model.newsletter
    return f"{nl.name} {edition_id}: {n} partners clicked your item", "\n".join(lines) + "\n"


def _click_notes(
    config: Config, report: EditionReport, transport: Transport, store: ReceiptLog, outcome: Sent
) -> None:
    edition_id = report.edition_id
    _, path = resolve_ledger(config, None)
    with Ledger(path) as ledger:
        manifest = ledger.manifest(edition_id) or {}
    keys = [str(e["path"]) for e in manifest.get("items", []) if isinstance(e, dict)]
    for item in edition_items(config, keys):
        contact = recipients_of(config, item)
        if contact is not None:
            subject, text = _clicks_text(config, report, item)
            send = partial(transport.send_notice, [contact], subject, text)
            send_once(store, (edition_id, item.key, contact, "clicks"), send, outcome)


def mail_report(config: Config, edition_id: str, transport: Transport) -> tuple[Sent, Sent]:
    """The report to each reviewer and the click notes to the contacts, each once."""
    reviewers, contacts = Sent(), Sent()
    report = edition_report(config, edition_id)  # once: every note below reads the same one
    html_path = config.state_dir / "reports" / f"{edition_id}.html"
    subject = f"{config.model.newsletter.name} {edition_id}: the report"
    with receipt_log(config) as store:
        pending = [
            r for r in config.model.schedule.reviewers
            if (_EVERYONE, r.lower()) not in store.sent(edition_id, "report")
        ]  # fmt: skip
        reviewers.before = len(config.model.schedule.reviewers) - len(pending)
        if pending:
            text = report_text(config, report, html_path)
            for reviewer in pending:
                send = partial(transport.send_notice, [reviewer], subject, text)
                send_once(store, (edition_id, _EVERYONE, reviewer, "report"), send, reviewers)
        if config.model.receipts.enabled:
            _click_notes(config, report, transport, store, contacts)
    return reviewers, contacts
