"""The newsletter's calendar, computed from config.toml alone: no scheduler, no store, no I/O.

The zone, the grace period, one trigger per enabled job, the next and the last send time and
the edition the coming send carries. The scheduler stores these triggers, the jobs ask them
when they were due, and `newsflash schedule list` shows them; all three see the same calendar.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from newsflash.config import Config, Job
from newsflash.errors import ConfigError
from newsflash.pipeline import current_edition_id

__all__ = [
    "CRON_FIELDS",
    "JOBS",
    "LOOKBACK_SLACK",
    "WallClockCronTrigger",
    "coming_edition",
    "configured_triggers",
    "cron_text",
    "fmt",
    "grace_seconds",
    "last_send_time",
    "make_trigger",
    "next_runs",
    "next_send_time",
    "trigger_key",
    "upcoming_runs",
    "zone",
]

JOBS = ("reminder", "proof", "send", "report")
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")


class WallClockCronTrigger(CronTrigger):  # type: ignore[misc]
    """A CronTrigger that fires once per wall-clock time, also on the autumn DST night.

    APScheduler's CronTrigger fires a job set at 02:30 twice on the night the clocks go back
    (02:30 summer time, then 02:30 winter time). Like cron, this one skips the second
    occurrence of a repeated wall-clock time. A time that does not exist (the spring night)
    still fires once, at the same instant, which the clock shows an hour later (02:30 becomes
    03:30 summer time): it is never skipped.

    Job stores keep this class by its import path (newsflash.schedule.timetable); stores that
    name an earlier home are carried over by schedule/upgrade.py.
    """

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        nxt: dt.datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while nxt is not None and _second_occurrence(nxt, self.timezone):
            nxt = super().get_next_fire_time(nxt, nxt)
        # Normalised through UTC: in a spring gap CronTrigger returns a wall time that does not
        # exist (02:30+01:00 on the night it jumps to 03:00), which prints misleadingly.
        return None if nxt is None else nxt.astimezone(dt.UTC).astimezone(self.timezone)


def _second_occurrence(moment: dt.datetime, tz: dt.tzinfo) -> bool:
    """True when the wall-clock time of `moment` already happened an hour before.

    Converting from UTC never lands in a spring gap, and sets ``fold=1`` exactly on the
    second pass through a repeated hour."""
    return moment.astimezone(dt.UTC).astimezone(tz).fold == 1


def zone(config: Config) -> ZoneInfo:
    name = config.model.newsletter.timezone
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as e:
        raise ConfigError(
            f"{config.path}: [newsletter] timezone '{name}' is not a time zone; write an IANA "
            "name such as 'Europe/Brussels'."
        ) from e


def grace_seconds(config: Config) -> int:
    """APScheduler counts grace in whole seconds; at least one, so 0 means 'on time only'."""
    return max(1, round(config.model.schedule.grace_hours * 3600))


def fmt(moment: dt.datetime, tz: dt.tzinfo | None) -> str:
    """A moment as the log and the reviewers read it: the newsletter's zone, then UTC."""
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M %Z} ({moment.astimezone(dt.UTC):%H:%M} UTC)"


def make_trigger(name: str, job: Job, tz: ZoneInfo, config_path: Path | None = None) -> CronTrigger:
    fields = {f: getattr(job, f) for f in CRON_FIELDS if getattr(job, f) is not None}
    try:
        return WallClockCronTrigger(timezone=tz, **fields)
    except (ValueError, TypeError) as e:
        where = f"{config_path}: " if config_path else ""
        raise ConfigError(
            f"{where}[schedule.{name}]: {e}. Write cron fields as APScheduler's CronTrigger "
            'understands them, e.g. day = "1st tue", hour = 9.'
        ) from None


def configured_triggers(config: Config) -> dict[str, CronTrigger]:
    """The enabled jobs of config.toml [schedule], by name."""
    tz = zone(config)
    out: dict[str, CronTrigger] = {}
    for name in JOBS:
        job: Job | None = getattr(config.model.schedule, name)
        if job is not None and job.enabled:
            out[name] = make_trigger(name, job, tz, config.path)
    return out


def next_runs(trigger: BaseTrigger, count: int, now: dt.datetime) -> list[dt.datetime]:
    """The next `count` fire times after `now`, as the scheduler itself would chain them."""
    runs: list[dt.datetime] = []
    previous: dt.datetime | None = None
    cursor = now
    while len(runs) < count:
        nxt: dt.datetime | None = trigger.get_next_fire_time(previous, cursor)
        if nxt is None:
            break
        runs.append(nxt)
        previous = cursor = nxt
    return runs


def next_send_time(config: Config, now: dt.datetime | None = None) -> dt.datetime | None:
    trigger = configured_triggers(config).get("send")
    if trigger is None:
        return None
    now = now or dt.datetime.now(zone(config))
    return trigger.get_next_fire_time(None, now)  # type: ignore[no-any-return]


LOOKBACK_SLACK = 15 * 60
"""Seconds beyond the grace period that last_send_time looks back (a job handed to a busy
thread pool starts a little after APScheduler decided to run it)."""


def last_send_time(config: Config, now: dt.datetime | None = None) -> dt.datetime | None:
    """The latest time the send job was due at or before `now`, if within the grace period.

    APScheduler does not tell a job when it was due, so the send job asks its trigger: the
    edition it carries is that of the month it was due in, not of the moment it runs."""
    trigger = configured_triggers(config).get("send")
    if trigger is None:
        return None
    tz = zone(config)
    now = (now or dt.datetime.now(tz)).astimezone(tz)

    def due_at_or_after(moment: dt.datetime) -> dt.datetime | None:
        nxt: dt.datetime | None = trigger.get_next_fire_time(None, moment)
        return None if nxt is None or nxt > now else nxt

    lo = now - dt.timedelta(seconds=grace_seconds(config) + LOOKBACK_SLACK)
    if due_at_or_after(lo) is None:
        return None
    hi = now  # invariant: a fire time lies in [lo, now]; none in [hi, now] unless hi == now
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if due_at_or_after(mid) is not None:
            lo = mid
        else:
            hi = mid
    return due_at_or_after(hi) or due_at_or_after(lo)


def coming_edition(config: Config, now: dt.datetime | None = None) -> str:
    """The edition the reminder and the proof are about: the one the next send will carry.

    Without a send job, the edition of the next month."""
    tz = zone(config)
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    when = next_send_time(config, now)
    if when is None:
        first = now.date().replace(day=1) + dt.timedelta(days=32)
        when = dt.datetime(first.year, first.month, 1, tzinfo=tz)
    return current_edition_id(config, when)


def upcoming_runs(
    config: Config, name: str, count: int, now: dt.datetime
) -> list[tuple[dt.datetime, str]]:
    """The next `count` runs of job `name`, each with the edition it is about: the send's own
    month for the send, the edition the coming send carries for the reminder and the proof."""
    trigger = configured_triggers(config)[name]
    return [
        (when, current_edition_id(config, when) if name == "send" else coming_edition(config, when))
        for when in next_runs(trigger, count, now)
    ]


def cron_text(job: Job) -> str:
    """The job's cron fields as config.toml sets them (the default second=0 left out)."""
    return " ".join(
        f"{f}={getattr(job, f)}"
        for f in CRON_FIELDS
        if getattr(job, f) is not None and not (f == "second" and getattr(job, f) == 0)
    )


def trigger_key(trigger: BaseTrigger) -> str:
    """What makes two triggers fire at the same times: class, fields, zone, bounds."""
    return "|".join(
        str(x)
        for x in (
            type(trigger).__name__,
            trigger,
            getattr(trigger, "timezone", ""),
            getattr(trigger, "start_date", ""),
            getattr(trigger, "end_date", ""),
            getattr(trigger, "jitter", ""),
        )
    )
