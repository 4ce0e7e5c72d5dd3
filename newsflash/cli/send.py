"""`newsflash send` and `status`: the send to partners and where each one stands.

Thin on purpose: each command parses, asks the library (sending/plan.py through the dry run,
sending/send.py, sending/report.py) and prints; no ledger is opened here. `newsflash --help`
and every other command import this module, so the library (which loads the renderer and
SendGrid, about half a second) is imported only where a command uses it: `# deferred:`.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from newsflash.cli.common import State, console, err_console, handled, pass_state, print_problems
from newsflash.config import Config
from newsflash.signals import sigterm_as_interrupt

if TYPE_CHECKING:  # types only; the modules load when a command runs (see above)
    from newsflash.pipeline import BuiltEdition
    from newsflash.sending.plan import Prepared
    from newsflash.sending.report import EditionReport, LedgerView, SendReport
    from newsflash.state.ledger import EditionStatus
    from newsflash.transports.base import Transport


def _shorten(value: Any, limit: int = 240) -> Any:
    """A request for display: long bodies cut, only the first personalizations shown."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… [{len(value)} characters in all]"
    if isinstance(value, list):
        shown = [_shorten(v, limit) for v in value[:3]]
        if len(value) > 3:
            shown.append(f"… {len(value) - 3} more")
        return shown
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    return value


def _print_plan(report: SendReport) -> None:
    for key, reason in report.left_out:
        console.print(f"[yellow]left out[/] {key}: {reason}", soft_wrap=True)
    if report.subscriber_problems:
        console.print(
            f"[yellow]subscribers.csv has {report.subscriber_problems} problem(s)"
            "[/] (bad rows are skipped): see `newsflash subscribers`",
            soft_wrap=True,
        )
    console.print(
        f"Edition [bold]{report.edition_id}[/] through [bold]{report.transport}[/]: "
        f"{report.total} recipient(s), {report.already_accepted} already accepted, "
        f"{report.to_send} to send now"
        + (f" in about {report.requests} request(s)" if report.requests else "")
        + (f"; {report.uncertain} uncertain" if report.uncertain else "")
        + ".",
        soft_wrap=True,
    )


def _print_summary(report: SendReport) -> None:
    table = Table(
        title=f"Edition {report.edition_id} through {report.transport}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("accepted in this run", str(report.accepted_now))
    table.add_row("accepted before", str(report.already_accepted))
    table.add_row("failed (retried by the next run)", str(report.failed))
    table.add_row("uncertain", str(report.uncertain))
    if report.skipped:
        table.add_row("left the audience since the start", str(report.skipped))
    if report.transport == "outbox":
        table.add_row("files written", f"{report.accepted_now} in outbox/{report.edition_id}/")
    else:
        table.add_row("requests", str(report.requests))
    table.add_row("[bold]total recipients[/]", f"[bold]{report.total}[/]")
    console.print(table)
    if report.stopped:
        console.print(f"[red]stopped:[/] {escape(report.stopped)}", soft_wrap=True)
    if report.status is not None:
        _print_status_lines(report.status)


@click.command()
@click.argument("edition")
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help="Send one test copy (subject starts with [TEST]) to ADDRESS; not counted.",
)
@click.option(
    "--dry-run", is_flag=True, help="Send nothing; show the counts and the first request."
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also resend recipients whose request got no answer (they may get it twice).",
)
@click.option(
    "--transport",
    type=click.Choice(["sendgrid", "outbox"]),
    default=None,
    help="Default: sendgrid when SENDGRID_API_KEY is set, else outbox (.eml files).",
)
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation on a terminal.")
@pass_state
@handled
def send(
    state: State,
    edition: str,
    to: str | None,
    dry_run: bool,
    resend_uncertain: bool,
    transport: str | None,
    yes: bool,
) -> None:
    """Send EDITION (YYYY-MM) to every subscribed partner in the audience, exactly once.

    \b
    Builds the edition, freezes the recipients in the ledger (state/), sends in batches and
    records each answer. Run it again after a crash or an outage: it resumes and never resends
    anyone accepted. Recipients whose request got no answer are "uncertain" (see `newsflash
    status`); --resend-uncertain resends them. Asks for confirmation only on a terminal.
    Exit 1 if anything failed, stopped or is uncertain.
    """
    from newsflash.sending.approval import require_approved  # deferred: start-up time
    from newsflash.sending.plan import prepare  # deferred: start-up time
    from newsflash.sending.send import send_edition  # deferred: start-up time
    from newsflash.state.ledgers import build_edition  # deferred: start-up time
    from newsflash.transports.factory import make_transport  # deferred: start-up time

    config = state.config
    tp = make_transport(config, transport, dry_run=dry_run)
    result = build_edition(config, edition, ledger_name=tp.ledger_name)
    print_problems(result.load.errors)
    if to:
        if dry_run:
            raise click.UsageError("--to sends a test copy; leave out --dry-run")
        _send_test_copy(config, edition, to, tp, result)
        return
    ready = prepare(config, edition, tp, result)  # the list is read once, for both
    plan = send_edition(
        config, edition, transport=tp, dry_run=True, ready=ready, resend_uncertain=resend_uncertain
    )
    _print_plan(plan)
    if dry_run:
        if plan.first_request is not None:
            console.print("First request (nothing was sent):")
            click.echo(json.dumps(_shorten(plan.first_request), indent=2, ensure_ascii=False))
        return
    if plan.to_send == 0 and not (plan.status is not None and plan.status.in_flight):
        _nothing_to_send(plan)
        return
    require_approved(config, edition, result)  # held: nothing to confirm, nothing sent
    if sys.stdin.isatty() and not yes:
        click.confirm(
            f"Send edition {edition} to {plan.to_send} recipient(s) through {plan.transport}?",
            abort=True,
        )
    report = _send_with_progress(config, edition, tp, plan, resend_uncertain, ready)
    _print_summary(report)
    if report.stopped or report.failed or report.uncertain:
        sys.exit(1)


def _send_test_copy(
    config: Config, edition: str, to: str, tp: Transport, build: BuiltEdition
) -> None:
    from newsflash.sending.send import send_test  # deferred: start-up time

    report = send_test(config, edition, to, tp, build=build)
    console.print(
        f"[green]test copy sent[/] to {escape(to)} through {report.transport} "
        "(subject starts with \\[TEST]; the ledger does not count it).",
        soft_wrap=True,
    )


def _nothing_to_send(plan: SendReport) -> None:
    console.print("Nothing to send now.")
    if plan.status is not None:
        _print_status_lines(plan.status)
    if plan.uncertain:
        sys.exit(1)


def _send_with_progress(
    config: Config,
    edition: str,
    tp: Transport,
    plan: SendReport,
    resend_uncertain: bool,
    ready: Prepared,
) -> SendReport:
    """The send under a progress bar; SIGTERM stops it as Ctrl-C does (exit 130)."""
    from newsflash.sending.send import send_edition  # deferred: start-up time

    try:
        with (
            sigterm_as_interrupt(),
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar,
        ):
            task = bar.add_task("sending", total=plan.to_send)
            return send_edition(
                config,
                edition,
                transport=tp,
                resend_uncertain=resend_uncertain,
                ready=ready,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except KeyboardInterrupt:
        err_console.print(
            f"[red]interrupted.[/] A batch whose answer had not come is uncertain; "
            f"see `newsflash status {edition}`, then run `newsflash send {edition}` "
            "again to resume.",
            soft_wrap=True,
        )
        sys.exit(130)


@click.command()
@click.argument("edition")
@click.option(
    "--transport",
    "ledger_name",
    default=None,
    type=click.Choice(["sendgrid", "outbox", "sendgrid-sandbox"]),
    help="Whose ledger to show (default: every ledger that has the edition).",
)
@click.option("--all", "show_all", is_flag=True, help="List every uncertain/failed recipient.")
@pass_state
@handled
def status(state: State, edition: str, ledger_name: str | None, show_all: bool) -> None:
    """Where every recipient of EDITION stands: counts, approval, uncertain and failed.

    Ends with what to do next (resume, resend uncertain ones, or nothing).
    """
    from newsflash.sending.report import edition_status  # deferred: start-up time

    report = edition_status(state.config, edition, ledger_name)
    for view in report.ledgers:
        _print_ledger(view, edition, show_all)
    console.print(f"[bold]approval[/] {escape(report.approval_line)}", soft_wrap=True)
    if report.list_problem:
        console.print(
            f"[red]the partner list cannot be read now[/]: {escape(report.list_problem)}. A "
            "send stops (or does not start) until it is fixed; see `newsflash subscribers`.",
            soft_wrap=True,
        )
    if not report.ledgers:
        _print_not_sent(report)


def _print_ledger(view: LedgerView, edition: str, show_all: bool) -> None:
    st = view.status
    table = Table(
        title=f"Edition {edition} — {view.name} ledger ({view.path.name})",
        title_justify="left",
        show_header=False,
    )
    table.add_column("")
    table.add_column("", justify="right")
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
    table.add_row("started", st.started_at or "")
    table.add_row("finished", st.finished_at or "not yet")
    console.print(table)
    if view.approval is not None:
        hash_, at, by = view.approval
        same = "the edition sent" if hash_ == st.manifest_hash else "ANOTHER version"
        console.print(f"approved by {escape(by)} at {at} ({same})", soft_wrap=True)
    limit = None if show_all else 50
    for title, rows in (
        ("uncertain", [(e, "") for e in st.uncertain_recipients]),
        ("failed", list(st.failed_recipients)),
    ):
        _print_recipients(title, rows, limit)
    _print_status_lines(st)


def _print_status_lines(status: EditionStatus) -> None:
    from newsflash.sending.report import status_lines  # deferred: start-up time

    for line in status_lines(status):
        console.print(escape(line), soft_wrap=True)


def _print_recipients(title: str, rows: list[tuple[str, str]], limit: int | None) -> None:
    if rows:
        console.print(f"[bold]{title}[/] ({len(rows)}):")
    for address, reason in rows[:limit]:
        console.print(
            f"  {escape(address)}" + (f"  [dim]{escape(reason)}[/]" if reason else ""),
            soft_wrap=True,
            markup=True,
        )
    if limit is not None and len(rows) > limit:
        console.print(f"  … {len(rows) - limit} more (--all lists them)")


def _print_not_sent(report: EditionReport) -> None:
    edition = report.edition_id
    if report.approval is not None:
        _, at, by = report.approval
        console.print(f"approved by {escape(by)} at {at}", soft_wrap=True)
    console.print(
        f"Edition {edition} has not been sent through any transport. Try "
        f"`newsflash send {edition} --dry-run`.",
        soft_wrap=True,
    )
