"""Helpers for the scheduler, approval and intake tests: a [schedule] to taste, waiting, mail.

Triggers are real cron fields set to a moment a second or two ahead (`at`), so the real
APScheduler fires them. The clock they read starts at a fixed instant (the `clock` fixture,
time-machine) and ticks on in real time, so a test holds whatever the day it runs.

test_timetable.py, test_scheduler.py and test_jobs.py import `clock` from here, which runs each
of their tests at every one of INSTANTS, among them the hour after a first-Tuesday send; they
share `stop_sending` and the ledger's counts too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import json
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.schedulers.background import BackgroundScheduler

from newsflash.config import Config, load_config
from newsflash.schedule import jobs
from newsflash.schedule.scheduler import open_scheduler
from newsflash.state.ledger import Ledger
from newsflash.state.ledgers import ledger_path

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


# -- the calendar tests' instants, ledger counts and stopped sends -------------------------------

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


@pytest.fixture(name="clock", autouse=True, params=list(INSTANTS.values()), ids=list(INSTANTS))
def clock_at_each_instant(request: pytest.FixtureRequest) -> Iterator[dt.datetime]:
    """Overrides conftest's single instant: each test of a module that imports this fixture
    runs at every one of INSTANTS."""
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


@pytest.fixture(name="stop_sending")
def stop_sending_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
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
