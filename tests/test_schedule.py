"""The scheduler, with the real APScheduler on triggers a second or two ahead.

Every test here runs at several fixed instants (the `clock` fixture below, time-machine with the
clock ticking on), among them the hour after a first-Tuesday send, when a monthly send is due
"weeks away" no more: a test must hold at any instant, not only on the day it was written.

Every send goes through the outbox transport (no SENDGRID_API_KEY in tests), so what a job did
is files to read: .eml per recipient in outbox/<edition>/, test copies in outbox/tests/,
notices in outbox/notices/.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from calendar_helpers import (
    CONTRIBUTOR,
    REVIEWER,
    TZ,
    at,
    audience_size,
    body,
    notices,
    running,
    sent_files,
    set_schedule,
    sleep_until,
    soon,
    wait_for,
)
from click.testing import CliRunner

from newsflash.cli import main
from newsflash.config import Config, Job
from newsflash.errors import NewsflashError
from newsflash.pipeline import current_edition_id
from newsflash.schedule import jobs
from newsflash.schedule.scheduler import (
    WallClockCronTrigger,
    make_trigger,
    next_runs,
    scheduler_lock,
    stored_jobs,
)
from newsflash.state.ledger import Ledger
from newsflash.state.ledgers import ledger_path

FAR = {"day": "1st tue", "hour": 9}  # the real monthly send: due, or just past, at some instants
# A send that is never due while a test runs, whatever the real clock says: for a process the
# test starts, which runs on the real clock.
NEVER = {"year": 2099, "month": 1, "day": "1st tue", "hour": 9}

INSTANTS = {
    "mid-month": dt.datetime(2026, 6, 17, 14, 0, tzinfo=TZ),
    "the hour after a send": dt.datetime(2026, 12, 1, 10, 3, tzinfo=TZ),
    "half an hour after a send, in winter time": dt.datetime(2027, 3, 2, 9, 30, tzinfo=TZ),
    "the evening before a send": dt.datetime(2026, 11, 30, 21, 0, tzinfo=TZ),
}


@pytest.fixture(autouse=True, params=list(INSTANTS.values()), ids=list(INSTANTS))
def clock(request: pytest.FixtureRequest) -> Iterator[dt.datetime]:
    """Overrides conftest's single instant: each test here runs at every one of INSTANTS."""
    with time_machine.travel(request.param, tick=True):
        yield request.param


def ledger_status(config: Config, edition: str) -> tuple[int, int, int]:
    """(accepted, total, accepted batches) in the outbox ledger."""
    with Ledger(ledger_path(config, "outbox")) as ledger:
        st = ledger.status(edition)
        batches = ledger._conn.execute(
            "SELECT COUNT(*) FROM batches WHERE edition_id = ? AND state = 'accepted'",
            (edition,),
        ).fetchone()[0]
    return st.accepted, st.total, batches


def sent_completely(config: Config, edition: str) -> bool:
    path = ledger_path(config, "outbox")
    if not path.exists():
        return False
    accepted, total, _ = ledger_status(config, edition)
    return total > 0 and accepted == total


# -- each job fires and does its work -----------------------------------------------------------


def test_each_job_fires_at_its_time_and_does_its_work(workspace: Path) -> None:
    t = soon(1.5)
    config = set_schedule(
        workspace,
        jobs={
            "reminder": at(t),
            "proof": at(t),
            "send": at(t + dt.timedelta(seconds=1)),
        },
    )
    edition = current_edition_id(config)
    with running(config):
        wait_for(lambda: sent_completely(config, edition), timeout=10)
        wait_for(lambda: len(notices(config)) >= 2)

    by_subject = {str(m["Subject"]).strip(): m for m in notices(config)}
    reminder = next(m for s, m in by_subject.items() if "please send your items by" in s)
    assert reminder["To"] == CONTRIBUTOR
    text = body(reminder)
    send_day = (t + dt.timedelta(seconds=1)).astimezone(TZ)
    deadline = (send_day - dt.timedelta(days=7)).date()
    assert f"{deadline.day} " in str(reminder["Subject"]) and str(deadline.year) in text
    assert f"edition {edition}" in text
    assert "title:" in text and "section:" in text and "docs/contributors.md" in text

    proof = next(m for s, m in by_subject.items() if s.startswith("Proof:"))
    assert proof["To"] == REVIEWER
    text = body(proof)
    assert f"edition {edition}" in text
    assert "Left out, and why:" in text and "pinned to edition 2022-02" in text
    assert "status is 'draft'" in text and "Checks:" in text
    tests = list((config.outbox_dir / "tests" / edition).glob("*.eml"))
    assert len(tests) == 1 and REVIEWER in tests[0].name

    assert len(sent_files(config, edition)) == audience_size(config)


# -- restarts and misfires ------------------------------------------------------------------


def test_send_missed_while_down_runs_once_when_back_within_grace(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = soon(0.5)
    config = set_schedule(workspace, jobs={"send": at(t)}, grace_hours=60 / 3600)
    edition = current_edition_id(config)
    with running(config):
        pass  # stopped before the send time: the job is stored, not run
    assert not sent_files(config, edition)
    sleep_until(t + dt.timedelta(seconds=1))
    assert stored_jobs(config)["send"] == t  # still due: kept in the store while down

    with running(config):
        wait_for(lambda: sent_completely(config, edition))
        time.sleep(0.5)  # a second firing would show up here
    accepted, total, batches = ledger_status(config, edition)
    assert accepted == total == audience_size(config) == len(sent_files(config, edition))
    assert batches == 1
    assert "schedule send: kept" in caplog.text


def test_send_missed_beyond_grace_sends_nothing_and_tells_the_reviewers(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = soon(0.3)
    config = set_schedule(workspace, jobs={"send": at(t)}, grace_hours=1 / 3600)
    edition = current_edition_id(config)
    with running(config):
        pass
    sleep_until(t + dt.timedelta(seconds=2.5))
    with running(config):
        wait_for(lambda: notices(config))
    assert not sent_files(config, edition)
    assert not ledger_path(config, "outbox").exists() or not sent_completely(config, edition)
    (notice,) = notices(config)
    assert notice["To"] == REVIEWER
    assert "NOT sent" in str(notice["Subject"])
    text = body(notice)
    assert f"send of edition {edition} due on" in text and "was missed by" in text
    assert f"newsflash send {edition}" in text
    assert "was missed by" in caplog.text and "not run" in caplog.text


def test_config_change_at_next_start_keeps_a_pending_misfire(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = soon(0.5)
    config = set_schedule(workspace, jobs={"send": at(t)}, grace_hours=60 / 3600)
    edition = current_edition_id(config)
    with running(config):
        pass
    sleep_until(t + dt.timedelta(seconds=1))
    config = set_schedule(workspace, jobs={"send": FAR}, grace_hours=60 / 3600)

    with running(config) as scheduler:
        wait_for(lambda: sent_completely(config, edition))
        expected = make_trigger("send", Job(**FAR), TZ).get_next_fire_time(
            None, dt.datetime.now(TZ)
        )
        wait_for(lambda: getattr(scheduler.get_job("send"), "next_run_time", None) == expected)
    assert "schedule send: updated" in caplog.text and "is kept" in caplog.text
    assert len(sent_files(config, edition)) == audience_size(config)


def test_config_change_without_a_pending_run_takes_the_new_calendar(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": {"day": "last fri", "hour": 7}})
    with running(config):
        pass
    config = set_schedule(workspace, jobs={"send": FAR, "reminder": {"day": 15, "hour": 8}})
    now = dt.datetime.now(TZ)
    with running(config) as scheduler:
        send, reminder = scheduler.get_job("send"), scheduler.get_job("reminder")
        assert send is not None and reminder is not None
        assert send.next_run_time == make_trigger("send", Job(**FAR), TZ).get_next_fire_time(
            None, now
        )
        assert reminder.next_run_time.day == 15
    config = set_schedule(workspace, jobs={"send": FAR})
    with running(config) as scheduler:
        assert scheduler.get_job("reminder") is None  # removed from config: removed from store


# -- two schedulers, one workspace ---------------------------------------------------------------


def test_two_schedulers_on_one_workspace_send_once(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = soon(1.5)  # hourly at t's minute and second: a job that stays in the store after it runs
    config = set_schedule(workspace, jobs={"send": {"minute": t.minute, "second": t.second}})
    edition = current_edition_id(config)
    with running(config), running(config):
        wait_for(lambda: sent_completely(config, edition))
        wait_for(lambda: caplog.text.count("job send done") >= 2)
    accepted, total, batches = ledger_status(config, edition)
    assert accepted == total == audience_size(config) == len(sent_files(config, edition))
    assert batches == 1  # one request's worth: nobody handed out twice
    assert caplog.text.count(f"sent edition {edition}") == 1
    assert caplog.text.count(f"{total} accepted now") == 1
    assert "already sent to everyone" in caplog.text or "another process is sending" in caplog.text


def test_a_send_job_fired_twice_sends_nothing_new(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    edition = current_edition_id(config)
    first = jobs.run_send(str(config.path))
    second = jobs.run_send(str(config.path))
    assert first.startswith(f"sent edition {edition}")
    assert "already sent to everyone" in second
    assert ledger_status(config, edition)[2] == 1


def test_a_second_scheduler_lock_on_the_workspace_is_refused(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    with (
        scheduler_lock(config),
        pytest.raises(NewsflashError, match="already running"),
        scheduler_lock(config),
    ):
        pass
    with scheduler_lock(config):  # released: a later start is fine
        pass


@pytest.mark.parametrize("clock", [INSTANTS["mid-month"]], indirect=True)  # runs on the real one
def test_schedule_run_refuses_a_second_instance_and_stops_cleanly_on_sigterm(
    workspace: Path,
) -> None:
    config = set_schedule(workspace, jobs={"send": NEVER})
    newsflash = Path(sys.executable).parent / "newsflash"  # the installed entry point
    cmd = [str(newsflash), "--config", str(config.path), "schedule", "run"]
    env = {k: v for k, v in os.environ.items() if k != "SENDGRID_API_KEY"}
    first = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(
            lambda: (
                (config.state_dir / "scheduler.lock").exists()
                and (config.state_dir / "scheduler.lock").read_text().strip()
            ),
            timeout=15,
        )
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
        assert second.returncode == 1
        assert "already running on this workspace" in second.stderr
        assert str(first.pid) in second.stderr
        time.sleep(0.3)
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    assert "job send: next run" in err and "scheduler stopped" in err


# -- stopping in the middle of a send ----------------------------------------------------------


@pytest.fixture
def stop_sending(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """`stop_sending(n)`: the next n sends are stopped (as by SIGTERM) as soon as they begin,
    so each ends after its first batch; STOP is clear again when each returns."""
    from newsflash.sending import send as sending

    original = sending.send_edition
    armed: list[int] = [0]

    def send_then_stop(*args: Any, **kwargs: Any) -> Any:
        if armed[0] <= 0:
            return original(*args, **kwargs)
        armed[0] -= 1
        jobs.STOP.set()
        try:
            return original(*args, **kwargs)
        finally:
            jobs.STOP.clear()

    def arm(n: int = 1) -> None:
        armed[0] = n

    monkeypatch.setattr(sending, "send_edition", send_then_stop)
    yield arm
    jobs.STOP.clear()


MARKER = "scheduler-send.json"


def set_marker_due(config: Config, hours_ago: float) -> None:
    """Say the interrupted send was due (and started) `hours_ago` hours before now.

    Set, not shifted: at some instants the send really was due an hour ago, so a shift from the
    recorded due time would measure the grace period from the wrong place."""
    path = config.state_dir / MARKER
    doc = json.loads(path.read_text(encoding="utf-8"))
    moment = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).isoformat()
    doc.update({key: moment for key in doc if key != "edition"})
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_a_stopped_send_ends_after_its_batch_and_resumes_at_the_next_start(
    workspace: Path, stop_sending: Callable[[int], None]
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR}, batch_size=2, grace_hours=1)
    edition = current_edition_id(config)
    stop_sending(1)
    outcome = jobs.run_send(str(config.path))
    assert "stopped after 2 of" in outcome
    accepted, total, _ = ledger_status(config, edition)
    assert accepted == 2 < total
    assert jobs.interrupted_send(config) is not None
    set_marker_due(config, 0)  # due just now: well within the hour of grace

    with running(config):
        wait_for(lambda: sent_completely(config, edition))
    assert len(sent_files(config, edition)) == total
    assert jobs.interrupted_send(config) is None


def test_shutdown_waits_for_the_batch_in_progress(workspace: Path) -> None:
    """The scheduler's stop sets jobs.STOP, then shutdown(wait=True) lets the job end."""
    t = soon(0.5)
    config = set_schedule(workspace, jobs={"send": at(t)}, batch_size=1)
    edition = current_edition_id(config)
    stop = threading.Event()
    from newsflash.schedule.scheduler import run

    thread = threading.Thread(target=run, args=(config, stop))
    thread.start()
    try:
        wait_for(
            lambda: (
                ledger_path(config, "outbox").exists() and ledger_status(config, edition)[0] >= 1
            ),
            timeout=10,
        )
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    accepted, total, _ = ledger_status(config, edition)
    with Ledger(ledger_path(config, "outbox")) as ledger:
        st = ledger.status(edition)
    assert st.in_flight == 0 and st.uncertain == 0  # stopped between batches, never mid-batch
    assert accepted == len(sent_files(config, edition)) <= total


def test_a_resumed_send_stopped_again_keeps_the_time_it_was_first_due(
    workspace: Path, stop_sending: Callable[[int], None]
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR}, batch_size=1, grace_hours=6)
    edition = current_edition_id(config)
    stop_sending(2)  # the send, and its resume
    assert "stopped after 1 of" in jobs.run_send(str(config.path))
    set_marker_due(config, 5)  # the send was due 5 hours ago: 1 hour of grace left
    marker = jobs.interrupted_send(config)
    assert marker is not None
    with running(config):  # resumes it, and is stopped again after one more batch
        wait_for(lambda: ledger_status(config, edition)[0] == 2)
    assert jobs.interrupted_send(config) == marker  # no fresh grace period for the resume


def test_an_interrupted_send_past_grace_at_start_is_not_resumed_and_the_reviewers_are_told(
    workspace: Path, stop_sending: Callable[[int], None]
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR}, batch_size=1, grace_hours=6)
    edition = current_edition_id(config)
    stop_sending(1)
    assert "stopped after 1 of" in jobs.run_send(str(config.path))
    set_marker_due(config, 7)  # back 7 hours after it was due
    with running(config) as scheduler:
        assert scheduler.get_job("send-resume") is None
    assert ledger_status(config, edition)[0] == 1  # not resumed
    assert jobs.interrupted_send(config) is None
    (notice,) = notices(config)
    assert notice["To"] == REVIEWER
    assert f"1 of {audience_size(config)} sent; finish it with `newsflash send {edition}`" in (
        body(notice).replace("\r\n", "\n").replace("\n", " ")
    )


def test_the_send_carries_the_edition_of_the_month_it_was_due_not_of_when_it_ran(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Due at 22:00 on 31 January, run at 00:30 on 1 February (within grace): January's."""
    config = set_schedule(workspace, jobs={"send": {"day": "last", "hour": 22}})
    ran = dt.datetime(2025, 2, 1, 0, 30, tzinfo=TZ)
    load = jobs._load
    monkeypatch.setattr(jobs, "_load", lambda path: (load(path)[0], ran))
    outcome = jobs.run_send(str(config.path))
    assert outcome.startswith("sent edition 2025-01"), outcome
    assert not sent_files(config, "2025-02")


def test_a_resumed_send_carries_the_edition_it_was_sending(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    config.state_dir.mkdir(parents=True, exist_ok=True)
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    (config.state_dir / MARKER).write_text(
        json.dumps({"edition": "2025-01", "started_at": an_hour_ago.isoformat()}),
        encoding="utf-8",
    )
    with running(config):
        wait_for(lambda: sent_completely(config, "2025-01"))
    assert not sent_files(config, current_edition_id(config))


def test_a_send_handed_out_as_the_scheduler_stops_sends_nothing_and_starts_at_the_next_start(
    workspace: Path,
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    edition = current_edition_id(config)
    jobs.STOP.set()
    try:
        outcome = jobs.run_send(str(config.path))
    finally:
        jobs.STOP.clear()
    assert "did not start" in outcome
    assert not sent_files(config, edition) and not ledger_path(config, "outbox").exists()
    with running(config):
        wait_for(lambda: sent_completely(config, edition))
    assert jobs.interrupted_send(config) is None


def test_stopping_pauses_the_scheduler_before_anything_else_stops(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No job is handed out while the intake and a running send are being stopped."""
    from apscheduler.schedulers.base import STATE_PAUSED

    from newsflash.schedule import scheduler as schedule
    from newsflash.schedule.intake import Intake

    config = set_schedule(workspace, jobs={"send": FAR})
    opened: list[object] = []
    seen: list[tuple[bool, bool]] = []
    open_scheduler = schedule.open_scheduler

    def recording_open(config: Config, now: dt.datetime | None = None) -> object:
        opened.append(open_scheduler(config, now))
        return opened[-1]

    intake_stop = Intake.stop

    def recording_stop(self: Intake) -> None:
        seen.append((getattr(opened[0], "state", None) == STATE_PAUSED, jobs.STOP.is_set()))
        intake_stop(self)

    monkeypatch.setattr(schedule, "open_scheduler", recording_open)
    monkeypatch.setattr(Intake, "stop", recording_stop)
    stop = threading.Event()
    stop.set()
    schedule.run(config, stop)
    assert seen == [(True, True)]


def test_a_broken_template_fails_the_scheduled_send_and_proof_and_tells_the_reviewers(
    workspace: Path,
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR, "proof": {"day": "last thu"}})
    template = config.templates_dir / "edition.txt.j2"
    template.write_text(template.read_text(encoding="utf-8") + "\n{% if %}\n", encoding="utf-8")
    with pytest.raises(NewsflashError, match="template"):
        jobs.run_send(str(config.path))
    with pytest.raises(NewsflashError, match="template"):
        jobs.run_proof(str(config.path))
    send, proof = notices(config)
    assert "send FAILED" in str(send["Subject"]) and "edition.txt.j2" in body(send)
    assert "proof FAILED" in str(proof["Subject"]) and "edition.txt.j2" in body(proof)
    assert send["To"] == proof["To"] == REVIEWER


def test_a_missed_send_already_made_by_hand_is_not_reported_as_not_sent(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = set_schedule(workspace, jobs={"send": FAR})
    edition = current_edition_id(config)
    assert jobs.run_send(str(config.path)).startswith(f"sent edition {edition}")
    jobs.report_missed_send(config, dt.datetime.now(TZ) - dt.timedelta(hours=7), 7.0)
    assert not notices(config)
    assert "sent to everyone" in caplog.text


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


def test_a_trigger_survives_the_job_store_and_still_skips_the_repeat(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": {"hour": 2, "minute": 30}})
    with running(config) as scheduler:
        job = scheduler.get_job("send")
        assert job is not None and isinstance(job.trigger, WallClockCronTrigger)
        after = job.trigger.get_next_fire_time(
            dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 10, 25, 0, 31, tzinfo=dt.UTC),
        )
        assert after == dt.datetime(2026, 10, 26, 1, 30, tzinfo=dt.UTC)


# -- the command line -------------------------------------------------------------------------


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


def test_schedule_list_shows_a_pending_missed_run(workspace: Path) -> None:
    t = soon(0.2)
    config = set_schedule(workspace, jobs={"send": at(t)})
    with running(config):
        pass
    sleep_until(t + dt.timedelta(seconds=0.3))
    result = CliRunner().invoke(
        main, ["--config", str(config.path), "schedule", "list"], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    assert "missed" in result.output and "runs at start if within grace" in result.output


def test_a_wrong_cron_field_names_the_job_and_the_file(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": {"day": "1st tuesday", "hour": 9}})
    result = CliRunner().invoke(main, ["--config", str(config.path), "schedule", "list"])
    assert result.exit_code == 1
    assert "[schedule.send]" in result.output and "config.toml" in result.output


def test_a_failed_scheduled_send_is_reported_to_the_reviewers(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    config.subscribers_path.write_text("email,first_name,status,segments\n", encoding="utf-8")
    with pytest.raises(NewsflashError, match="no one to send to"):
        jobs.run_send(str(config.path))
    (notice,) = notices(config)
    assert "FAILED" in str(notice["Subject"]) and notice["To"] == REVIEWER
    assert "no one to send to" in body(notice)
