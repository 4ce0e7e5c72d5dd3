"""Helpers for the scheduler, approval and intake tests: a [schedule] to taste, waiting, mail.

Triggers are real cron fields set to a moment a second or two ahead (`at`), so the real
APScheduler fires them. The clock they read starts at a fixed instant (the `clock` fixture,
time-machine) and ticks on in real time, so a test holds whatever the day it runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

from newsflash.config import Config, load_config
from newsflash.schedule.scheduler import open_scheduler

TZ = ZoneInfo("Europe/Brussels")
REVIEWER = "reviewer@example.org"
CONTRIBUTOR = "chair@example.org"


def at(moment: dt.datetime) -> dict[str, Any]:
    """Cron fields that fire exactly once, at `moment` (to the second)."""
    m = moment.astimezone(TZ)
    return {
        "year": m.year,
        "month": m.month,
        "day": m.day,
        "hour": m.hour,
        "minute": m.minute,
        "second": m.second,
    }


def soon(seconds: float) -> dt.datetime:
    """A whole second at least `seconds` from now, in the newsletter's zone."""
    moment = dt.datetime.now(TZ) + dt.timedelta(seconds=seconds)
    return moment.replace(microsecond=0) + dt.timedelta(seconds=1)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_schedule(
    workspace: Path,
    *,
    jobs: dict[str, dict[str, Any]],
    grace_hours: float = 6,
    require_approval: bool = False,
    reviewers: tuple[str, ...] = (REVIEWER,),
    contributors: tuple[str, ...] = (CONTRIBUTOR,),
    deadline_days: int = 7,
    batch_size: int | None = None,
) -> Config:
    """Rewrite config.toml's [schedule] tables (and optionally the batch size); reload it."""
    path = workspace / "config.toml"
    kept: list[str] = []
    skipping = False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped.startswith("[schedule")
        if batch_size is not None and stripped.startswith("batch_size"):
            line = f"batch_size = {batch_size}"
        if not skipping:
            kept.append(line)
    out = [
        *kept,
        "",
        "[schedule]",
        f"grace_hours = {_toml(grace_hours)}",
        f"require_approval = {_toml(require_approval)}",
        f"reviewers = {_toml(reviewers)}",
        f"contributors = {_toml(contributors)}",
        f"deadline_days = {deadline_days}",
    ]
    for name, fields in jobs.items():
        out.append(f"[schedule.{name}]")
        out += [f"{k} = {_toml(v)}" for k, v in fields.items()]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return load_config(path)


def wait_for(predicate: Callable[[], Any], timeout: float = 8.0, step: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; return its value or fail with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(step)


@contextlib.contextmanager
def running(config: Config) -> Iterator[BackgroundScheduler]:
    """The scheduler of `config`, started; shut down (waiting for its jobs) on leaving."""
    scheduler = open_scheduler(config)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=True)


def sleep_until(moment: dt.datetime) -> None:
    time.sleep(max(0.0, (moment - dt.datetime.now(moment.tzinfo)).total_seconds()))


def read_mail(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def notices(config: Config) -> list[EmailMessage]:
    folder = config.outbox_dir / "notices"
    return [read_mail(p) for p in sorted(folder.glob("*.eml"))] if folder.is_dir() else []


def sent_files(config: Config, edition_id: str) -> list[Path]:
    folder = config.outbox_dir / edition_id
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def audience_size(config: Config) -> int:
    from newsflash.subscribers import load_subscribers

    sl = load_subscribers(config.subscribers_path)
    return len(sl.audience(config.model.audience.segments))
