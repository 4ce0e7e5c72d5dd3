"""`newsflash send`: the send to partners, a dry run, test copies.

Thin on purpose: each command parses, asks the library (sending/plan.py through the dry run,
sending/send.py, sending/report.py) and prints; no ledger is opened here. `newsflash --help`
and every other command import this module, so the library (which loads the renderer and
SendGrid, about half a second) is imported only where a command uses it: `# deferred:`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from newsflash.cli.common import (
    State,
    console,
    counts_table,
    edition_argument,
    err_console,
    escape,
    handled,
    pass_state,
    print_problems,
)
from newsflash.cli.status import print_status_lines
from newsflash.errors import NewsflashError

if TYPE_CHECKING:  # types only; the modules load when a command runs (see above)
    from newsflash.config import Config
    from newsflash.pipeline import BuiltEdition
    from newsflash.sending.plan import Prepared
    from newsflash.sending.report import SendReport
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
        console().print(f"[yellow]left out[/] {key}: {reason}", soft_wrap=True)
    if report.subscriber_problems:
        console().print(
            f"[yellow]subscribers.csv has {report.subscriber_problems} problem(s)"
            "[/] (bad rows are skipped): see `newsflash subscribers`",
            soft_wrap=True,
        )
    console().print(
        f"Edition [bold]{report.edition_id}[/] through [bold]{report.transport}[/]: "
        f"{report.total} recipient(s), {report.already_accepted} already accepted, "
        f"{report.to_send} to send now"
        + (f" in about {report.requests} request(s)" if report.requests else "")
        + (f"; {report.uncertain} uncertain" if report.uncertain else "")
        + ".",
        soft_wrap=True,
    )


def _say_approval(
    config: Config, edition: str, build: BuiltEdition, plan: SendReport, dry_run: bool
) -> None:
    """The approval state comes first: a send that would be held says so before any count.

    A dry run names the state; a real send with anyone to send to is refused here, before the
    counts are printed, when the edition is not approved as it builds now."""
    from newsflash.sending.approval import (  # deferred: start-up time
        approval_state,
        require_approved,
    )

    if not config.model.schedule.require_approval:
        return
    will_send = plan.to_send > 0 or (plan.status is not None and bool(plan.status.in_flight))
    if not dry_run:
        if will_send:
            require_approved(config, edition, build)  # held: nothing to confirm, nothing sent
        return
    state = approval_state(config, edition, build)
    colour = "green" if state.approved else "yellow"
    console().print(f"[{colour}]approval[/] {escape(state.describe())}", soft_wrap=True)
    if will_send and not state.approved:
        console().print("[yellow]A send now would be held: nothing would be sent.[/]")


def _print_first_request(request: Any) -> None:
    """A dry run's first request as JSON, long values cut short."""
    import json  # deferred: start-up time (only a dry run prints JSON)

    console().print("First request (nothing was sent):")
    click.echo(json.dumps(_shorten(request), indent=2, ensure_ascii=False))


def _print_notes(report: SendReport) -> None:
    """The sync with SendGrid, what its events settled, and who --resend-uncertain holds."""
    if report.synced:
        console().print(escape(report.synced), soft_wrap=True)
    if report.settled:
        console().print(
            f"{report.settled} uncertain recipient(s) recorded as accepted: SendGrid's events "
            "showed it had taken their request.",
            soft_wrap=True,
        )
    if report.held_back:
        console().print(f"[yellow]{escape(report.held_back)}[/]", soft_wrap=True)


def _print_summary(report: SendReport) -> None:
    table = counts_table(f"Edition {report.edition_id} through {report.transport}")
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
    console().print(table)
    _print_notes(report)
    if report.stopped:
        console().print(f"[red]stopped:[/] {escape(report.stopped)}", soft_wrap=True)
    if report.status is not None:
        print_status_lines(report.status)


@click.command()
@edition_argument
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    multiple=True,
    help="Send a test copy (subject starts with [TEST]) to ADDRESS; not counted. Repeat it "
    "for several addresses.",
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
    to: tuple[str, ...],
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
        _send_test_copies(config, edition, to, tp, result)
        return
    ready = prepare(config, edition, tp, result)  # the list is read once, for both
    plan = send_edition(
        config, edition, transport=tp, dry_run=True, ready=ready, resend_uncertain=resend_uncertain
    )
    _say_approval(config, edition, result, plan, dry_run)
    _print_plan(plan)
    if dry_run:
        _print_notes(plan)
        if plan.first_request is not None:
            _print_first_request(plan.first_request)
        return
    if plan.to_send == 0 and not (plan.status is not None and plan.status.in_flight):
        _nothing_to_send(plan)
        return
    if sys.stdin.isatty() and not yes:
        click.confirm(
            f"Send edition {edition} to {plan.to_send} recipient(s) through {plan.transport}?",
            abort=True,
        )
    report = _send_with_progress(config, edition, tp, plan, resend_uncertain, ready)
    _print_summary(report)
    if report.stopped or report.failed or report.uncertain:
        sys.exit(1)
    _send_receipts(config, edition, tp)


def _send_receipts(config: Config, edition: str, tp: Transport) -> None:
    """Each item's contact hears that the edition went out (once; the send stands whatever
    happens to a receipt, so a failure is one warning line)."""
    from newsflash.reports.receipts import send_receipts  # deferred: start-up time

    try:
        done = send_receipts(config, edition, tp, tp.ledger_name)
    except NewsflashError as e:
        err_console().print(
            f"[yellow]warning[/] receipts not sent: {escape(str(e))}", soft_wrap=True
        )
        return
    if done.sent or done.failed:
        console().print(f"receipts to the items' contacts: {escape(str(done))}", soft_wrap=True)


def _send_test_copies(
    config: Config, edition: str, to: tuple[str, ...], tp: Transport, build: BuiltEdition
) -> None:
    """One test copy to each address (each named once, whatever its case), and where it went:
    the outbox file, or SendGrid's message id. A refused address stops the rest, after the
    lines of those already sent."""
    from newsflash.sending.send import send_test  # deferred: start-up time

    unique: dict[str, str] = {}
    for address in to:
        unique.setdefault(address.strip().lower(), address.strip())
    for address in unique.values():
        report = send_test(config, edition, address, tp, build=build)
        console().print(
            f"[green]test copy sent[/] to {escape(address)}: {escape(_where(config, report))}",
            soft_wrap=True,
        )
    console().print("(The subject starts with \\[TEST]; the ledger does not count test copies.)")


def _where(config: Config, report: SendReport) -> str:
    """Where a test copy went, in words: the outbox file, or what SendGrid did with it."""
    where = report.message_id or ""
    if where.startswith("outbox:"):
        return f"written to {config.outbox_dir / where.removeprefix('outbox:')}"
    if report.transport == "sendgrid-sandbox":
        return "checked by SendGrid in sandbox mode, which delivers nothing"
    return f"accepted by SendGrid (message id {where or 'not given'})"


def _nothing_to_send(plan: SendReport) -> None:
    console().print("Nothing to send now.")
    _print_notes(plan)
    if plan.status is not None:
        print_status_lines(plan.status)
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
    from rich.progress import (  # deferred: rich's start-up time
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
    )

    from newsflash.sending.send import send_edition  # deferred: start-up time
    from newsflash.signals import sigterm_as_interrupt  # deferred: start-up, for --help

    try:
        with (
            sigterm_as_interrupt(),
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console(),
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
        err_console().print(
            f"[red]interrupted.[/] A batch whose answer had not come is uncertain; "
            f"see `newsflash status {edition}`, then run `newsflash send {edition}` "
            "again to resume.",
            soft_wrap=True,
        )
        sys.exit(130)
