"""The report as one self-contained HTML page a reviewer can open or forward.

Charts are inline SVG drawn from the figures, styles are inline, nothing is fetched: the page
works offline and in a mail attachment. Autoescaping is on, since item titles, links and
organisation names come from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from newsflash.files import write_atomic
from newsflash.reports.figures import EditionReport
from newsflash.reports.sources import ReportError
from newsflash.reports.tables import Table, percent

__all__ = ["Bar", "render_page", "write_page"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("newsflash.reports", "."),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["percent"] = percent


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, in the SVG's own units."""

    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


def hour_bars(hours: Sequence[int], width: float = 720, height: float = 160) -> list[Bar]:
    """Vertical bars, one per hour, scaled to the busiest hour (an empty chart stays flat)."""
    top = max(hours, default=0) or 1
    step = width / max(len(hours), 1)
    return [
        Bar(f"hour {h}: {n}", n, h * step, height - n / top * height, step * 0.8, n / top * height)
        for h, n in enumerate(hours)
    ]


def level_bars(rows: Sequence[tuple[str, int]], width: float = 480, row: float = 22) -> list[Bar]:
    """Horizontal bars, one per row, scaled to the largest value."""
    top = max((n for _, n in rows), default=0) or 1
    return [
        Bar(label, n, 0, i * row, n / top * width, row * 0.7) for i, (label, n) in enumerate(rows)
    ]


def render_page(
    report: EditionReport, tables: Sequence[Table], comparison: Table | None = None
) -> str:
    d = report.delivery
    delivery = [
        ("delivered", d.delivered),
        ("deferred", d.deferred),
        ("bounced", d.bounced),
        ("dropped", d.dropped),
        ("not yet known", d.not_yet_known),
    ]
    items = [(i.title, i.clickers) for i in report.engagement.items]
    return _ENV.get_template("report.html.j2").render(
        report=report,
        tables=tables,
        comparison=comparison,
        delivery_bars=level_bars(delivery),
        item_bars=level_bars(items),
        hour_bars=hour_bars(report.engagement.hours),
    )


def write_page(path: Path, html: str) -> None:
    if path.is_dir():
        raise ReportError(f"{path} is a folder; give --html a file name such as report.html")
    try:
        write_atomic(path, html)
    except OSError as e:
        raise ReportError(
            f"cannot write {path} ({e.strerror or e}); choose another --html file"
        ) from None
