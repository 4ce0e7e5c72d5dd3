"""`newsflash subscribers`: the partner list at a glance."""

from __future__ import annotations

import sys

import click

from newsflash.cli.common import State, console, handled, pass_state
from newsflash.subscribers import load_subscribers, summary_table


@click.command()
@pass_state
@handled
def subscribers(state: State) -> None:
    """Summarise subscribers.csv: statuses, segments, the audience, and every problem row.

    Exit 1 if any row has an error (such rows are skipped when sending).
    """
    config = state.config
    sl = load_subscribers(config.subscribers_path)
    console.print(summary_table(sl, config.model.audience.segments, max_problems=200))
    errors = sum(1 for p in sl.problems if p.severity == "error")
    if errors:
        console.print(
            f"[red]{errors} row(s) have errors and are skipped when sending; fix them "
            f"in {config.subscribers_path}.[/]",
            soft_wrap=True,
        )
        sys.exit(1)
