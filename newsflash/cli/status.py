"""`newsflash status`: where every recipient of an edition stands, from the ledgers.

Thin as cli/send.py is: sending/report.py reads the ledgers (and settles what SendGrid's events
proved), this module prints; the library is imported where the command runs (`# deferred:`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from newsflash.cli.common import (
    LEDGER_CHOICES,
    State,
    console,
    counts_table,
    edition_argument,
    escape,
    handled,
    pass_state,
)

if TYPE_CHECKING:  # types only; the modules load when the command runs
    from newsflash.config import Config
    from newsflash.sending.report import EditionReport, LedgerView, Suppressed
    from newsflash.state.ledger import EditionStatus


@click.command()
@edition_argument
@click.option(
    "--transport",
    "ledger_name",
    default=None,
    type=click.Choice(LEDGER_CHOICES),
    help="Whose ledger to show (default: every ledger that has the edition).",
)
@click.option("--all", "show_all", is_flag=True, help="List every uncertain/failed recipient.")
@pass_state
@handled
def status(state: State, edition: str, ledger_name: str | None, show_all: bool) -> None:
    """Where every recipient of EDITION stands: counts, approval, uncertain and failed.

    Ends with what to do next (resume, resend uncertain ones, or nothing).
    """
    from newsflash.sending.report import edition_status, suppressed_partners  # deferred: start-up

    report = edition_status(state.config, edition, ledger_name)
    zone = state.config.model.newsletter.timezone
    for view in report.ledgers:
        _print_ledger(view, edition, show_all, zone)
    _print_suppressed(state.config, suppressed_partners(state.config))
    console().print(f"[bold]approval[/] {escape(report.approval_line)}", soft_wrap=True)
    if report.list_problem:
        console().print(
            f"[red]the partner list cannot be read now[/]: {escape(report.list_problem)}. A "
            "send stops (or does not start) until it is fixed; see `newsflash subscribers`.",
            soft_wrap=True,
        )
    if not report.ledgers:
        _print_not_sent(report)


def _print_ledger(view: LedgerView, edition: str, show_all: bool, zone: str) -> None:
    """One ledger's counts, times on the newsletter's clock, and whether the approval is of
    the edition sent (who approved it and when: once, on the approval line after the tables)."""
    from newsflash.months import local_time  # deferred: zoneinfo's start-up, for --help

    st = view.status
    table = counts_table(f"Edition {edition} — {view.name} ledger ({view.path.name})")
    for label, n in (
        ("accepted", st.accepted),
        ("pending", st.pending),
        ("in flight", st.in_flight),
        ("uncertain", st.uncertain),
        ("failed", st.failed - view.skipped),
        ("left the audience", view.skipped),
        ("[bold]total[/]", st.total),
    ):
        table.add_row(label, str(n))
    table.add_row("started", local_time(st.started_at, zone))
    table.add_row("finished", local_time(st.finished_at, zone) if st.finished_at else "not yet")
    if view.approval is not None:
        same = view.approval[0] == st.manifest_hash
        table.add_row("approval", "of the edition sent" if same else "of ANOTHER version")
    console().print(table)
    limit = None if show_all else 50
    for title, rows in (
        ("uncertain", [(e, "") for e in st.uncertain_recipients]),
        ("failed", list(st.failed_recipients)),
    ):
        _print_recipients(title, rows, limit)
    print_status_lines(st)


def _print_suppressed(config: Config, found: Suppressed | None) -> None:
    if found is None:
        return  # the list can't be read: the status says so below
    reasons = ", ".join(f"{n} {reason}" for reason, n in found.by_reason.items())
    console().print(
        f"[bold]suppressed[/] {found.partners} partner(s) of {config.subscribers_path.name} "
        "are never mailed" + (f" ({reasons})" if reasons else "") + "; see `newsflash "
        "suppressions list`",
        soft_wrap=True,
    )


def print_status_lines(status: EditionStatus) -> None:
    from newsflash.sending.report import status_lines  # deferred: start-up time

    for line in status_lines(status):
        console().print(escape(line), soft_wrap=True)


def _print_recipients(title: str, rows: list[tuple[str, str]], limit: int | None) -> None:
    if rows:
        console().print(f"[bold]{title}[/] ({len(rows)}):")
    for address, reason in rows[:limit]:
        console().print(
            f"  {escape(address)}" + (f"  [dim]{escape(reason)}[/]" if reason else ""),
            soft_wrap=True,
            markup=True,
        )
    if limit is not None and len(rows) > limit:
        console().print(f"  … {len(rows) - limit} more (--all lists them)")


def _print_not_sent(report: EditionReport) -> None:
    edition = report.edition_id
    console().print(
        f"Edition {edition} has not been sent through any transport. Try "
        f"`newsflash send {edition} --dry-run`.",
        soft_wrap=True,
    )
