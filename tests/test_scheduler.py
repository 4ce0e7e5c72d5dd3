"""The scheduler, with the real APScheduler on triggers a second or two ahead.

Every test here runs at several fixed instants (the `clock` fixture of calendar_helpers,
time-machine with the clock ticking on), among them the hour after a first-Tuesday send, when a
monthly send is due "weeks away" no more: a test must hold at any instant, not only on the day
it was written.

Every send goes through the outbox transport (no SENDGRID_API_KEY in tests), so what a job did
is files to read: .eml per recipient in outbox/<edition>/, test copies in outbox/tests/,
notices in outbox/notices/.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from calendar_helpers import (
    CONTRIBUTOR,
    FAR,
    INSTANTS,
    MARKER,
    NEVER,
    REVIEWER,
    TZ,
    at,
    audience_size,
    body,
    clock_at_each_instant,  # noqa: F401  (the `clock` fixture: each test runs at every instant)
    ledger_status,
    notices,
    running,
    sent_completely,
    sent_files,
    set_marker_due,
    set_schedule,
    sleep_until,
    soon,
    stop_sending_fixture,  # noqa: F401  (the `stop_sending` fixture)
    wait_for,
)
from click.testing import CliRunner

from newsflash.cli import main
from newsflash.config import Config, Job
from newsflash.errors import NewsflashError
from newsflash.pipeline import current_edition_id
from newsflash.schedule import jobs
from newsflash.schedule.scheduler import scheduler_lock, stored_jobs
from newsflash.schedule.timetable import WallClockCronTrigger, make_trigger
from newsflash.state.ledger import Ledger
from newsflash.state.ledgers import ledger_path

# -- each job fires and does its work ----------------------------------------------------------


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
    assert "title:" in text and "section:" in text
    assert "The full guide, with every field: https://newsflash.example.org/contributors/" in text

    proof = next(m for s, m in by_subject.items() if s.startswith("Proof:"))
    assert proof["To"] == REVIEWER
    text = body(proof)
    assert f"edition {edition}" in text
    assert "Left out, and why:" in text and "pinned to edition 2022-02" in text
    assert "status is 'draft'" in text and "Checks:" in text
    tests = list((config.outbox_dir / "tests" / edition).glob("*.eml"))
    assert len(tests) == 1 and REVIEWER in tests[0].name

    assert len(sent_files(config, edition)) == audience_size(config)


# -- restarts and misfires ---------------------------------------------------------------------


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


# -- two schedulers, one workspace -------------------------------------------------------------


def test_two_schedulers_on_one_workspace_send_once(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = soon(1.5)  # hourly at t's minute and second: a job that stays in the store after it runs
    config = set_schedule(workspace, jobs={"send": {"minute": t.minute, "second": t.second}})
    edition = current_edition_id(config)
    with running(config), running(config):
        wait_for(lambda: sent_completely(config, edition))
        wait_for(lambda: caplog.text.count("job send done") >= 1)
        time.sleep(1.0)  # the other scheduler's firing, if it sees the job still due
    accepted, total, batches = ledger_status(config, edition)
    assert accepted == total == audience_size(config) == len(sent_files(config, edition))
    assert batches == 1  # one request's worth: nobody handed out twice
    assert caplog.text.count(f"sent edition {edition}") == 1
    assert caplog.text.count(f"{total} accepted now") == 1
    # Both fire only when the second looks at the store before the first moved the job on:
    # a race, so the firing twice itself is proved below, with two sends started at once.
    if caplog.text.count("job send done") >= 2:
        assert "already sent to everyone" in caplog.text or "another process is sending" in (
            caplog.text
        )


def test_two_scheduled_sends_started_at_once_send_once(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    edition = current_edition_id(config)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def fire() -> None:
        start.wait()
        outcomes.append(jobs.run_send(str(config.path)))

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    accepted, total, batches = ledger_status(config, edition)
    assert accepted == total == audience_size(config) == len(sent_files(config, edition))
    assert batches == 1
    assert sum(o.startswith(f"sent edition {edition}") for o in outcomes) == 1, outcomes
    assert any("already sent to everyone" in o or "another process" in o for o in outcomes)


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


# -- stopping, and resuming at the next start --------------------------------------------------


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


# -- the command line --------------------------------------------------------------------------


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
