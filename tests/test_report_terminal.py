"""The terminal shows the first rows of a long table and says how many more the CSV and the
page hold; a short table is shown whole."""

from __future__ import annotations

import io

from rich.console import Console

from newsflash.reports.tables import Table
from newsflash.reports.terminal import MAX_ROWS, print_tables


def _printed(rows: int) -> str:
    body = tuple((f"Org {n:03d}", rows - n) for n in range(rows))
    table = Table("organisations", "Clicks per organisation", ("organisation", "clickers"), body)
    out = io.StringIO()
    print_tables(Console(file=out, width=100, color_system=None), [table])
    return out.getvalue()


def test_a_long_table_shows_its_first_rows_and_says_how_many_more_the_csv_has() -> None:
    text = _printed(MAX_ROWS + 5)
    assert f"Org {MAX_ROWS - 1:03d}" in text and f"Org {MAX_ROWS:03d}" not in text
    assert "... and 5 more rows: --csv or --html shows them all" in text


def test_a_table_of_exactly_the_limit_is_shown_whole_without_a_note() -> None:
    text = _printed(MAX_ROWS)
    assert f"Org {MAX_ROWS - 1:03d}" in text and "more rows" not in text
