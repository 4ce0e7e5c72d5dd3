"""The report as rich tables in the terminal; markup in item titles or links is shown as is."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table as RichTable

from newsflash.reports.figures import EditionReport
from newsflash.reports.tables import Table, percent

__all__ = ["print_notes", "print_tables"]


def _cell(table: Table, column: int, value: object) -> str:
    if column in table.rates:
        return percent(value if isinstance(value, float) or value is None else str(value))
    return "" if value is None else str(value)


MAX_ROWS = 25
"""Rows a terminal table shows; a list of 400 organisations is read in the CSV or the page
(which have every row), and drawing it took a second."""


def print_tables(console: Console, tables: Sequence[Table], max_rows: int = MAX_ROWS) -> None:
    """Each table in turn; an empty one says so instead of drawing an empty frame."""
    for table in tables:
        shown = RichTable(title=table.title, title_justify="left", highlight=False)
        for i, header in enumerate(table.headers):
            numeric = bool(table.rows) and isinstance(table.rows[0][i], int | float)
            shown.add_column(header, justify="right" if numeric or i in table.rates else "left")
        for row in table.rows[:max_rows]:
            shown.add_row(*(_cell(table, i, v) for i, v in enumerate(row)), style=None)
        if not table.rows:
            console.print(f"{table.title}: none", markup=False)
            continue
        console.print(shown)
        if len(table.rows) > max_rows:
            console.print(
                f"... and {len(table.rows) - max_rows} more rows: --csv or --html shows them all",
                markup=False,
            )


def print_notes(console: Console, report: EditionReport) -> None:
    for note in report.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
