"""The scheduler: APScheduler 3 running the jobs of config.toml, kept across restarts.

The calendar itself (zone, triggers, grace) is timetable.py's; this module stores its triggers,
keeps the store in step with config.toml, logs and reports what the jobs do, and runs them.

The job store lives in ``state/scheduler.sqlite`` so a run that fell due while the scheduler was
down still fires when it comes back, within ``grace_hours``, and is reported instead of made
after that. Two rules keep that promise against an APScheduler 3 pitfall:

* a stored job whose trigger is unchanged is kept as it is: re-adding it would recompute its
  next run from *now* and silently drop the missed one;
* a job whose trigger changed gets the new trigger but keeps a next run time that already lies
  in the past, so a pending misfire still runs (or is reported) once.

The ledger, not the scheduler, is the guard against double sends; ``state/scheduler.lock`` only
keeps a second ``newsflash schedule run`` on the same workspace from starting at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job as StoredJob
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.files import LockHeld, lock_exclusive, unlock
from newsflash.schedule import jobs
from newsflash.schedule.intake import Intake
from newsflash.schedule.resume import (
    HELD_ID,
    RESUME_ID,
    resume_interrupted_send,
    watch_held_send,
)
from newsflash.schedule.timetable import (
    JOBS,
    configured_triggers,
    fmt,
    grace_seconds,
    trigger_key,
    zone,
)
from newsflash.schedule.upgrade import upgrade_job_store

__all__ = [
    "FUNCS",
    "SyncAction",
    "create_scheduler",
    "open_scheduler",
    "run",
    "scheduler_lock",
    "store_path",
    "stored_jobs",
    "sync_jobs",
]

log = logging.getLogger("newsflash.schedule.scheduler")

FUNCS = {name: f"newsflash.schedule.jobs:run_{name}" for name in JOBS}
STORE_FILE = "scheduler.sqlite"
LOCK_FILE = "scheduler.lock"


# -- the persistent scheduler -------------------------------------------------------------------


def store_path(config: Config) -> Path:
    return config.state_dir / STORE_FILE


def stored_jobs(config: Config) -> dict[str, dt.datetime | None]:
    """Next run times as the job store holds them (a past one is a pending misfire).

    Read with plain sqlite, read-only: no scheduler is started and nothing is unpickled."""
    path = store_path(config)
    if not path.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT id, next_run_time FROM apscheduler_jobs").fetchall()
    except sqlite3.Error:
        return {}
    return {
        str(job_id): None if ts is None else dt.datetime.fromtimestamp(float(ts), dt.UTC)
        for job_id, ts in rows
    }


def create_scheduler(config: Config) -> BackgroundScheduler:
    """Not started; jobs stored in state/scheduler.sqlite, run in the newsletter's zone."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    upgrade_job_store(store_path(config))
    return BackgroundScheduler(
        timezone=zone(config),
        jobstores={
            "default": SQLAlchemyJobStore(url=f"sqlite:///{store_path(config)}"),
            "memory": MemoryJobStore(),
        },
        executors={"default": _LoggingExecutor(zone(config))},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": grace_seconds(config),
        },
    )


@dataclass(frozen=True)
class SyncAction:
    job: str
    action: str  # added | kept | updated | removed
    detail: str

    def __str__(self) -> str:
        return f"{self.job}: {self.action}" + (f" ({self.detail})" if self.detail else "")


def sync_jobs(
    scheduler: BackgroundScheduler, config: Config, now: dt.datetime | None = None
) -> list[SyncAction]:
    """Make the job store match config.toml without losing a run that is already due.

    The scheduler must be started paused, so that the store is open and nothing fires while
    the jobs are being compared.
    """
    tz = zone(config)
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    wanted = configured_triggers(config)
    args = (str(config.path),)
    opts: dict[str, Any] = {
        "misfire_grace_time": grace_seconds(config),
        "coalesce": True,
        "max_instances": 1,
    }
    actions: list[SyncAction] = []
    stored: dict[str, StoredJob] = {j.id: j for j in scheduler.get_jobs()}
    for job_id in stored:
        if job_id not in wanted and job_id != RESUME_ID:
            scheduler.remove_job(job_id)
            actions.append(SyncAction(job_id, "removed", "not enabled in config.toml"))
    for name, trigger in wanted.items():
        old = stored.get(name)
        if old is None:
            scheduler.add_job(FUNCS[name], trigger=trigger, id=name, name=name, args=args, **opts)
            actions.append(SyncAction(name, "added", str(trigger)))
            continue
        changes: dict[str, Any] = {}
        if old.func_ref != FUNCS[name] or tuple(old.args) != args:
            changes.update(func=FUNCS[name], args=args)
        changes.update({k: v for k, v in opts.items() if getattr(old, k) != v})
        if trigger_key(old.trigger) == trigger_key(trigger):
            if changes:
                scheduler.modify_job(name, **changes)
            actions.append(SyncAction(name, "kept", _pending(old.next_run_time, now)))
            continue
        # The calendar changed: new trigger, but a run already due stays due (run or reported).
        due = old.next_run_time if old.next_run_time and old.next_run_time <= now else None
        nxt = due or trigger.get_next_fire_time(None, now)
        scheduler.modify_job(name, trigger=trigger, next_run_time=nxt, **changes)
        detail = f"{old.trigger} -> {trigger}"
        if due is not None:
            detail += f"; the run due {fmt(due, tz)} is kept"
        actions.append(SyncAction(name, "updated", detail))
    return actions


def _pending(next_run: dt.datetime | None, now: dt.datetime) -> str:
    if next_run is not None and next_run <= now:
        return f"a run due {fmt(next_run, now.tzinfo)} is pending"
    return ""


# -- reporting -----------------------------------------------------------------------------------


class _LoggingExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """Logs a job's start as it is handed to a thread, so the log reads in order (the
    scheduler's own 'submitted' event is dispatched only after the whole round)."""

    def __init__(self, tz: dt.tzinfo) -> None:
        super().__init__(max_workers=4)
        self._tz = tz

    def _do_submit_job(self, job: StoredJob, run_times: list[dt.datetime]) -> None:
        due = run_times[-1]
        late = (dt.datetime.now(dt.UTC) - due).total_seconds()
        grace = job.misfire_grace_time
        if job.id == HELD_ID:
            pass  # a check every few seconds: logged only when it sends
        elif grace is None or late <= grace:  # beyond grace the missed-run report follows
            extra = f", {late / 60:.0f} min late" if late >= 60 else ""
            log.info("job %s started (due %s%s)", job.id, fmt(due, self._tz), extra)
        super()._do_submit_job(job, run_times)


class _Listener:
    """Logs every job's start, outcome and next run; reports a missed send to the reviewers."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.tz = zone(config)

    def __call__(self, event: SchedulerEvent) -> None:
        try:
            if isinstance(event, JobExecutionEvent):
                self._execution(event)
        except Exception:  # a listener must never take the scheduler down
            log.exception("while reporting on job %s", getattr(event, "job_id", "?"))

    def _execution(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            self._missed(event)
        elif event.code == EVENT_JOB_ERROR:
            log.error("job %s failed: %s%s", event.job_id, event.exception, self._next(event))
            log.debug("traceback of job %s:\n%s", event.job_id, event.traceback)
        elif event.code == EVENT_JOB_EXECUTED and event.job_id == HELD_ID:
            if event.retval is not None:
                log.info("%s", event.retval)
        elif event.code == EVENT_JOB_EXECUTED:
            log.info("job %s done: %s%s", event.job_id, event.retval, self._next(event))

    def _next(self, event: JobExecutionEvent) -> str:
        # Read from the store file, not scheduler.get_job(): shutdown(wait=True) holds the
        # scheduler's job-store lock while it waits for this very job, so that would deadlock.
        next_run = stored_jobs(self.config).get(event.job_id)
        if next_run is None:
            return "; no further run"
        return f"; next run {fmt(next_run, self.tz)}"

    def _missed(self, event: JobExecutionEvent) -> None:
        due: dt.datetime = event.scheduled_run_time
        late_h = (dt.datetime.now(dt.UTC) - due).total_seconds() / 3600
        grace_h = self.config.model.schedule.grace_hours
        name = "send" if event.job_id in ("send", RESUME_ID) else event.job_id
        log.warning(
            "job %s due %s was missed by %.1f hours (grace %g hours): not run%s",
            event.job_id,
            fmt(due, self.tz),
            late_h,
            grace_h,
            self._next(event),
        )
        if name == "send":
            jobs.report_missed_send(self.config, due, late_h)


# -- the lock and the foreground run ---------------------------------------------------------


@contextlib.contextmanager
def scheduler_lock(config: Config) -> Iterator[None]:
    """One `schedule run` per workspace; the kernel drops the flock if the process dies."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    path = config.state_dir / LOCK_FILE
    try:
        fd = lock_exclusive(path)
    except LockHeld as e:
        raise NewsflashError(
            f"a scheduler is already running on this workspace (pid {e.holder}, lock {path}); "
            "stop it first (e.g. systemctl stop newsflash-scheduler) or use that one"
        ) from None
    try:
        yield
    finally:
        unlock(fd)


def open_scheduler(config: Config, now: dt.datetime | None = None) -> BackgroundScheduler:
    """A running scheduler whose store matches config.toml; the caller shuts it down."""
    scheduler = create_scheduler(config)
    scheduler.add_listener(
        _Listener(config),
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED,
    )
    scheduler.start(paused=True)
    try:
        for action in sync_jobs(scheduler, config, now):
            log.info("schedule %s", action)
        resume_interrupted_send(scheduler, config)
        watch_held_send(scheduler, config)
    except BaseException:
        scheduler.shutdown(wait=False)
        raise
    scheduler.resume()
    return scheduler


def run(config: Config, stop: threading.Event | None = None) -> None:
    """Run the scheduler and the intake watcher until SIGTERM/SIGINT (or `stop` is set)."""
    stop = stop or threading.Event()
    tz = zone(config)
    with scheduler_lock(config):
        previous = _install_signals(stop)
        scheduler: BackgroundScheduler | None = None
        intake: Intake | None = None
        try:
            scheduler = open_scheduler(config)
            for job in scheduler.get_jobs():
                if job.next_run_time is not None:
                    log.info("job %s: next run %s", job.id, fmt(job.next_run_time, tz))
            intake = Intake(config)
            intake.start()
            log.info("watching %s for item files", config.submissions_dir)
            while not stop.wait(1.0):
                pass
            log.info("stopping: a send in progress stops after the batch it is sending")
        finally:
            if scheduler is not None:
                scheduler.pause()  # first: no job is handed out while the rest stops
            jobs.STOP.set()  # a send under way stops after its batch; one just handed out
            try:  # returns before sending anything
                if intake is not None:
                    intake.stop()
                if scheduler is not None:
                    scheduler.shutdown(wait=True)
            finally:
                jobs.STOP.clear()
                _restore_signals(previous)
        log.info("scheduler stopped")


_Handler = Any


def _install_signals(stop: threading.Event) -> dict[int, _Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, _Handler] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
