"""The newsletter's calendar: APScheduler 3 jobs from config.toml, kept across restarts.

The job store lives in ``state/scheduler.sqlite`` so a run that fell due while the scheduler was
down still fires when it comes back, within ``grace_hours``, and is reported instead of made
after that. Two rules keep that promise (see DESIGN.md, "Known pitfalls"):

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
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job as StoredJob
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from newsflash.config import Config, Job
from newsflash.errors import ConfigError, NewsflashError
from newsflash.files import LockHeld, lock_exclusive, unlock
from newsflash.schedule.upgrade import upgrade_job_store

__all__ = [
    "JOBS",
    "WallClockCronTrigger",
    "coming_edition",
    "configured_triggers",
    "last_send_time",
    "next_runs",
    "next_send_time",
    "open_scheduler",
    "run",
    "scheduler_lock",
    "stored_jobs",
    "sync_jobs",
]

log = logging.getLogger("newsflash.schedule.scheduler")

JOBS = ("reminder", "proof", "send")
FUNCS = {name: f"newsflash.schedule.jobs:run_{name}" for name in JOBS}
RESUME_ID = "send-resume"
STORE_FILE = "scheduler.sqlite"
LOCK_FILE = "scheduler.lock"
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")


class WallClockCronTrigger(CronTrigger):  # type: ignore[misc]
    """A CronTrigger that fires once per wall-clock time, also on the autumn DST night.

    APScheduler's CronTrigger fires a job set at 02:30 twice on the night the clocks go back
    (02:30 summer time, then 02:30 winter time). Like cron, this one skips the second
    occurrence of a repeated wall-clock time. A time that does not exist (the spring night)
    still fires once, at the same instant, which the clock shows an hour later (02:30 becomes
    03:30 summer time): it is never skipped.
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


# -- the calendar, computed from config alone -------------------------------------------------


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
    from newsflash.pipeline import current_edition_id

    tz = zone(config)
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    when = next_send_time(config, now)
    if when is None:
        first = now.date().replace(day=1) + dt.timedelta(days=32)
        when = dt.datetime(first.year, first.month, 1, tzinfo=tz)
    return current_edition_id(config, when)


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
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{store_path(config)}")},
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
            detail += f"; the run due {_fmt(due, tz)} is kept"
        actions.append(SyncAction(name, "updated", detail))
    return actions


def _pending(next_run: dt.datetime | None, now: dt.datetime) -> str:
    if next_run is not None and next_run <= now:
        return f"a run due {_fmt(next_run, now.tzinfo)} is pending"
    return ""


def _fmt(moment: dt.datetime, tz: dt.tzinfo | None) -> str:
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M %Z} ({moment.astimezone(dt.UTC):%H:%M} UTC)"


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
        if grace is None or late <= grace:  # beyond grace the missed-run report follows
            extra = f", {late / 60:.0f} min late" if late >= 60 else ""
            log.info("job %s started (due %s%s)", job.id, _fmt(due, self._tz), extra)
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
        elif event.code == EVENT_JOB_EXECUTED:
            log.info("job %s done: %s%s", event.job_id, event.retval, self._next(event))

    def _next(self, event: JobExecutionEvent) -> str:
        # Read from the store file, not scheduler.get_job(): shutdown(wait=True) holds the
        # scheduler's job-store lock while it waits for this very job, so that would deadlock.
        next_run = stored_jobs(self.config).get(event.job_id)
        if next_run is None:
            return "; no further run"
        return f"; next run {_fmt(next_run, self.tz)}"

    def _missed(self, event: JobExecutionEvent) -> None:
        due: dt.datetime = event.scheduled_run_time
        late_h = (dt.datetime.now(dt.UTC) - due).total_seconds() / 3600
        grace_h = self.config.model.schedule.grace_hours
        name = "send" if event.job_id in ("send", RESUME_ID) else event.job_id
        log.warning(
            "job %s due %s was missed by %.1f hours (grace %g hours): not run%s",
            event.job_id,
            _fmt(due, self.tz),
            late_h,
            grace_h,
            self._next(event),
        )
        if name == "send":
            from newsflash.schedule import jobs

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
        _resume_interrupted_send(scheduler, config)
    except BaseException:
        scheduler.shutdown(wait=False)
        raise
    scheduler.resume()
    return scheduler


def _resume_interrupted_send(scheduler: BackgroundScheduler, config: Config) -> None:
    """A scheduled send stopped (SIGTERM) or killed mid-way resumes at start, within the grace
    period counted from the time it was due; after that the reviewers are told to finish it."""
    from newsflash.schedule import jobs

    marker = jobs.interrupted_send(config)
    if marker is None:
        return
    edition_id, due = marker
    from newsflash.state.ledgers import default_ledger_name

    if jobs.edition_complete(config, edition_id, default_ledger_name(config)):
        jobs.clear_interrupted_send(config)
        _drop_stored_resume(scheduler)
        return
    late = dt.datetime.now(dt.UTC) - due
    if late.total_seconds() > grace_seconds(config):
        _drop_stored_resume(scheduler)  # reported here; not once more as a missed run
        log.warning(
            "the scheduled send of edition %s due %s was interrupted and is past its grace "
            "period: not resumed; finish it by hand with `newsflash send %s`",
            edition_id,
            _fmt(due, zone(config)),
            edition_id,
        )
        jobs.report_interrupted_send(config, edition_id, due, late.total_seconds() / 3600)
        jobs.clear_interrupted_send(config)
        return
    log.info("the scheduled send of edition %s was interrupted; resuming it now", edition_id)
    scheduler.add_job(
        FUNCS["send"],
        trigger=DateTrigger(dt.datetime.now(zone(config))),
        id=RESUME_ID,
        name=RESUME_ID,
        args=(str(config.path), edition_id),
        replace_existing=True,
        misfire_grace_time=grace_seconds(config),
        coalesce=True,
        max_instances=1,
    )


def _drop_stored_resume(scheduler: BackgroundScheduler) -> None:
    """A resume job left in the store by a scheduler that died before running it."""
    if scheduler.get_job(RESUME_ID) is not None:
        scheduler.remove_job(RESUME_ID)


def run(config: Config, stop: threading.Event | None = None) -> None:
    """Run the scheduler and the intake watcher until SIGTERM/SIGINT (or `stop` is set)."""
    from newsflash.schedule import jobs
    from newsflash.schedule.intake import Intake

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
                    log.info("job %s: next run %s", job.id, _fmt(job.next_run_time, tz))
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
