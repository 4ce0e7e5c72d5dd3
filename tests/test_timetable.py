"""The calendar computed from config.toml: triggers across daylight saving, and `schedule list`.

No scheduler runs here: the timetable is pure, so these tests ask the triggers directly. Every
test runs at several fixed instants (the `clock` fixture of calendar_helpers, time-machine with
the clock ticking on), among them the hour after a first-Tuesday send: a test must hold at any
instant, not only on the day it was written.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from calendar_helpers import (
    FAR,
    TZ,
    clock_at_each_instant,  # noqa: F401  (the `clock` fixture: each test runs at every instant)
    set_schedule,
)
from click.testing import CliRunner

from newsflash.cli import main
from newsflash.config import Job
from newsflash.pipeline import current_edition_id
from newsflash.schedule.timetable import WallClockCronTrigger, make_trigger, next_runs

# -- daylight saving time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "start", [dt.datetime(2026, 3, 26, 12, tzinfo=TZ), dt.datetime(2026, 10, 22, 12, tzinfo=TZ)]
)
@pytest.mark.parametrize("hour,minute", [(2, 30), (9, 0)])
def test_a_dst_weekend_in_brussels_neither_skips_nor_doubles_a_daily_job(
    start: dt.datetime, hour: int, minute: int
) -> None:
    trigger = make_trigger("send", Job(hour=hour, minute=minute), TZ)
    runs = next_runs(trigger, 6, start)  # Friday to Wednesday, across the Sunday change
    days = [r.astimezone(TZ).date() for r in runs]
    assert days == [start.date() + dt.timedelta(days=i + 1) for i in range(6)]
    # consecutive runs are 23, 24 or 25 hours apart, never 0 or 48
    gaps = {(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(runs)}
    assert gaps <= {23.0, 24.0, 25.0}
    for r in runs:
        local = r.astimezone(TZ)
        if local.date() not in (dt.date(2026, 3, 29),) or (hour, minute) == (9, 0):
            assert (local.hour, local.minute) == (hour, minute)
        else:  # 02:30 does not exist that night: it runs once, when the clock shows 03:30
            assert (local.hour, local.minute) == (3, 30)


def test_the_repeated_hour_in_october_fires_once_and_apscheduler_alone_would_fire_twice() -> None:
    from apscheduler.triggers.cron import CronTrigger

    start = dt.datetime(2026, 10, 24, 12, tzinfo=TZ)
    plain = CronTrigger(hour=2, minute=30, timezone=TZ)
    assert [r.astimezone(TZ).date() for r in next_runs(plain, 3, start)].count(
        dt.date(2026, 10, 25)
    ) == 2  # the pitfall this trigger exists for
    ours = WallClockCronTrigger(hour=2, minute=30, timezone=TZ)
    runs = next_runs(ours, 3, start)
    assert [r.astimezone(dt.UTC).isoformat() for r in runs] == [
        "2026-10-25T00:30:00+00:00",
        "2026-10-26T01:30:00+00:00",
        "2026-10-27T01:30:00+00:00",
    ]
    # started inside the repeated hour, after the first 02:30: the second one is not a run
    inside = dt.datetime(2026, 10, 25, 0, 45, tzinfo=dt.UTC)
    assert ours.get_next_fire_time(None, inside) == dt.datetime(2026, 10, 26, 1, 30, tzinfo=dt.UTC)


def test_the_monthly_send_keeps_its_wall_clock_time_across_both_changes() -> None:
    trigger = make_trigger("send", Job(day="1st tue", hour=9), TZ)
    runs = next_runs(trigger, 12, dt.datetime(2026, 1, 1, tzinfo=TZ))
    assert all((r.astimezone(TZ).hour, r.astimezone(TZ).minute) == (9, 0) for r in runs)
    assert [r.astimezone(dt.UTC).hour for r in runs] == [8, 8, 8, 7, 7, 7, 7, 7, 7, 7, 8, 8]
    assert [r.day for r in runs[:3]] == [6, 3, 3]  # first Tuesdays of Jan-Mar 2026


# -- the command line --------------------------------------------------------------------------


def test_schedule_list_shows_next_runs_in_the_zone_and_utc(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR, "proof": {"day": "last thu", "hour": 10}})
    result = CliRunner().invoke(
        main, ["--config", str(config.path), "schedule", "list"], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0, result.output
    runs = next_runs(make_trigger("send", Job(**FAR), TZ), 3, dt.datetime.now(TZ))
    for r in runs:
        assert f"{r.astimezone(TZ):%Y-%m-%d %H:%M}" in result.output
        assert f"{r.astimezone(dt.UTC):%Y-%m-%d %H:%M}Z" in result.output
        assert current_edition_id(config, r) in result.output
    assert "reminder" in result.output and "not configured" in result.output
    assert "day=1st tue hour=9" in result.output


def test_a_wrong_cron_field_names_the_job_and_the_file(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": {"day": "1st tuesday", "hour": 9}})
    result = CliRunner().invoke(main, ["--config", str(config.path), "schedule", "list"])
    assert result.exit_code == 1
    assert "[schedule.send]" in result.output and "config.toml" in result.output
