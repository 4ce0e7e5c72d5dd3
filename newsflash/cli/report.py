"""`newsflash report`: what an edition did, from local state only (works offline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsflash.cli.common import LEDGER_CHOICES, State, console, handled, pass_state

if TYPE_CHECKING:
    from newsflash.reports.tables import Table


@click.command()
@click.argument("edition", required=False)
@click.option("--all", "every", is_flag=True, help="Compare every sent edition over time.")
@click.option(
    "--csv",
    "csv_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write one CSV file per table into this folder.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one self-contained HTML page with charts to this file.",
)
@click.option(
    "--ledger",
    type=click.Choice(LEDGER_CHOICES),
    help="Which sends to report on (default: SendGrid's once it exists, else the outbox's).",
)
@pass_state
@handled
def report(
    state: State,
    edition: str | None,
    every: bool,
    csv_dir: Path | None,
    html_file: Path | None,
    ledger: str | None,
) -> None:
    """Report what EDITION did (default: the last one sent): delivery, trust, engagement.

    Reads the ledger, SendGrid's events (newsflash serve) and the suppressions (for a send an
    older newsflash made, subscribers.csv and the item files too); never the network. Security
    scanners' clicks are counted apart.
    """
    if every and edition:
        raise click.UsageError("give an EDITION or --all, not both")
    from newsflash.reports import (  # deferred: start-up time
        all_reports,
        edition_report,
        previous_reports,
    )
    from newsflash.reports.tables import comparison_table, edition_tables  # deferred: start-up time
    from newsflash.reports.terminal import print_notes, print_tables  # deferred: start-up time

    config = state.config
    reports = all_reports(config, ledger) if every else []
    if every and not reports:
        console().print("no edition has reached anyone yet: there is nothing to report")
        return
    chosen = reports[-1] if every else edition_report(config, edition, ledger)
    previous = reports[:-1] if every else previous_reports(config, chosen.edition_id, ledger)
    tables: list[Table] = edition_tables(chosen, previous)
    comparison = comparison_table(reports) if every else None
    shown = [comparison, *tables] if comparison else tables
    print_tables(console(), shown)
    print_notes(console(), chosen)
    if csv_dir is not None:
        from newsflash.reports.csv_out import write_csv  # deferred: only for --csv

        for path in write_csv(csv_dir, shown):
            console().print(f"wrote {path}", markup=False)
    if html_file is not None:
        from newsflash.reports.html_page import (  # deferred: jinja2, only for --html
            render_page,
            write_page,
        )

        write_page(html_file, render_page(chosen, tables, comparison))
        console().print(f"wrote {html_file}", markup=False)
