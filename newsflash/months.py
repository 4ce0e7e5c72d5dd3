"""Edition ids and month names: the calendar words every floor speaks.

An edition is named by its month (`YYYY-MM`) and numbered from the first edition. This sits on
the ground floor, beside config, so that config can check the ids it reads without importing
the edition that is assembled from it.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from newsflash.errors import EditionIdError

_ID = re.compile(r"^(\d{4})-(\d{2})$")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def parse_edition_id(value: str) -> dt.date:
    """The first day of the edition's month; the error says how to write an id."""
    m = _ID.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise EditionIdError(f"'{value}' is not an edition; write YYYY-MM, e.g. 2022-02.")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def edition_number(edition_id: str, first_edition: str) -> int:
    """Editions count months from the first one, gaps included: No. 4 is always May."""
    a, b = parse_edition_id(first_edition), parse_edition_id(edition_id)
    n = (b.year - a.year) * 12 + (b.month - a.month) + 1
    if n < 1:
        raise EditionIdError(
            f"edition {edition_id} is before the first edition {first_edition} "
            "(config.toml [newsletter] first_edition)."
        )
    return n


def month_label(edition_id: str) -> str:
    d = parse_edition_id(edition_id)
    return f"{MONTHS[d.month - 1]} {d.year}"


def human_date(d: dt.date) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def local_time(stamp: str | None, zone: str) -> str:
    """A stored UTC timestamp (ISO 8601) as the newsletter's clock shows it, zone named; a
    value that is not a timestamp is returned as it is, so nothing is hidden."""
    try:
        moment = dt.datetime.fromisoformat(stamp or "")
    except ValueError:
        return stamp or ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")
