"""One CSV file per report table, for a spreadsheet: rates as plain decimals, UTF-8."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from newsflash.files import write_atomic
from newsflash.reports.sources import ReportError
from newsflash.reports.tables import Cell, Table

__all__ = ["write_csv"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Cell) -> str:
    """Rates with six decimals; text a spreadsheet would run as a formula gets a quote first
    (an item title or a clicked URL is content from outside)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) and not isinstance(value, int) else text


def write_csv(folder: Path, tables: Sequence[Table], prefix: str = "") -> list[Path]:
    """Write <folder>/<prefix><table>.csv for each table; the folder is created if needed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"cannot create {folder} ({e.strerror or e}); choose another --csv folder"
        ) from None
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder; give --csv a folder to write into")
    written = []
    for table in tables:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(table.headers)
        writer.writerows([_cell(v) for v in row] for row in table.rows)
        path = folder / f"{prefix}{table.name}.csv"
        write_atomic(path, buffer.getvalue().encode("utf-8"))
        written.append(path)
    return written
