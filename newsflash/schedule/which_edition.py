"""Which edition a command is about when the secretariat names none, and what looks wrong
about one it names.

Every command that takes an edition (build, preview, approve, send, status) defaults to the
same one, the edition the schedule is working towards, so `newsflash build` and the send the
scheduler makes are about the same month. An id that cannot be an edition is one error,
whatever the command; an edition the calendar and the item files never point at is a warning,
because a typo in the year (2099-01 for 2022-01) builds an empty, misnumbered email.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsflash.config_loaded import Config, checked_edition_id
from newsflash.months import parse_edition_id
from newsflash.pipeline import current_edition_id

if TYPE_CHECKING:
    from newsflash.items import Item

# How many months from the coming edition, or from an item's date, still count as "near".
NEAR_MONTHS = 2


@dataclass(frozen=True)
class Chosen:
    """The edition a command works on, and whether the secretariat named it."""

    id: str
    defaulted: bool

    def describe(self) -> str:
        """What the command prints, so a defaulted edition is never a surprise."""
        if self.defaulted:
            return f"edition {self.id} (the coming one by the schedule; name another as YYYY-MM)"
        return f"edition {self.id}"


def default_edition(config: Config, now: dt.datetime | None = None) -> str:
    """The edition the schedule is working towards at `now`.

    Within the grace period of a send that was due, that send's edition (it may still go out,
    and `status` should show it); otherwise the edition the next send carries. Never one
    before edition No. 1."""
    from newsflash.schedule.timetable import coming_edition, last_send_time  # deferred: APScheduler

    due = last_send_time(config, now)
    chosen = current_edition_id(config, due) if due is not None else coming_edition(config, now)
    first = config.model.newsletter.first_edition
    return max(chosen, first)  # YYYY-MM strings sort as the months do


def choose_edition(config: Config, given: str | None, now: dt.datetime | None = None) -> Chosen:
    """The edition named on the command line, checked, or the default one."""
    if given is None:
        return Chosen(default_edition(config, now), defaulted=True)
    return Chosen(checked_edition_id(config, given), defaulted=False)


def _months(edition_id: str) -> int:
    d = parse_edition_id(edition_id)
    return d.year * 12 + d.month - 1


def near_an_item(edition_id: str, items: Iterable[Item]) -> bool:
    """An item pinned to the edition, or dated within NEAR_MONTHS before its month (items
    are written in the weeks before the edition that carries them). When it holds, the
    warnings do not depend on today, which is what lets the build stamp keep such a build."""
    target = _months(edition_id)
    for item in items:
        if item.edition == edition_id:
            return True
        if 0 <= target - (item.date.year * 12 + item.date.month - 1) <= NEAR_MONTHS:
            return True
    return False


def edition_warnings(
    config: Config, edition_id: str, items: Iterable[Item], now: dt.datetime | None = None
) -> list[str]:
    """What looks wrong about building `edition_id`: no title set for it, or a month that
    neither the calendar nor any item file points at."""
    notes: list[str] = []
    settings = config.model.editions.get(edition_id)
    if settings is None or not settings.title.strip():
        missing = (
            f'has no [editions."{edition_id}"] table'
            if settings is None
            else f'[editions."{edition_id}"] has no title'
        )
        notes.append(
            f"{config.path} {missing}, so the headline falls back to the newsletter's name and "
            f"the month. Run `newsflash edition new {edition_id} --title ...` (or write the "
            "title there)."
        )
    if near_an_item(edition_id, items):  # then the calendar, and APScheduler, are not needed
        return notes
    coming = default_edition(config, now)
    if abs(_months(edition_id) - _months(coming)) > NEAR_MONTHS:
        notes.append(
            f"edition {edition_id} is far from the coming edition {coming} and no item file "
            "is pinned to it or dated in the months before it: check the year and month."
        )
    return notes
