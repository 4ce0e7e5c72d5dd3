"""`newsflash subscribers`: the partner list at a glance; `subscribers apply` heals it."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from newsflash.cli.common import State, console, escape, handled, pass_state


@click.group(invoke_without_command=True)
@click.pass_context
@handled
def subscribers(ctx: click.Context) -> None:
    """Summarise subscribers.csv: statuses, segments, the audience, and every problem row.

    Exit 1 if any row has an error (such rows are skipped when sending).
    `newsflash subscribers apply` writes the suppression store's statuses into the file.
    """
    if ctx.invoked_subcommand is not None:
        return
    from newsflash.subscribers import load_subscribers, summary_table  # deferred: start-up time

    config = ctx.find_object(State).config  # type: ignore[union-attr]
    sl = load_subscribers(config.subscribers_path)
    console().print(summary_table(sl, config.model.audience.segments, max_problems=200))
    errors = sum(1 for p in sl.problems if p.severity == "error")
    if errors:
        console().print(
            f"[red]{errors} row(s) have errors and are skipped when sending; fix them "
            f"in {config.subscribers_path}.[/]",
            soft_wrap=True,
        )
        sys.exit(1)


@subscribers.command()
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@pass_state
@handled
def apply(state: State, dry_run: bool) -> None:
    """Write the suppression store's statuses into subscribers.csv.

    \b
    Only status cells change (unsubscribe -> unsubscribed, bounce/invalid -> bounced,
    spam report -> complained; a lifted suppression -> subscribed where apply wrote the
    status); every other byte stays. The old file is kept as subscribers.csv.<when>.bak.
    Refused while a send runs.
    """
    from zoneinfo import ZoneInfo  # deferred: zoneinfo's start-up, for --help

    from newsflash.state.writeback_file import apply_statuses, summary_lines  # deferred: start-up

    config = state.config
    zone = ZoneInfo(config.model.newsletter.timezone)
    applied = apply_statuses(
        config.subscribers_path,
        config.state_dir,
        clock=lambda: datetime.now(zone),
        dry_run=dry_run,
    )
    for line in summary_lines(applied):
        console().print(escape(line), soft_wrap=True)
