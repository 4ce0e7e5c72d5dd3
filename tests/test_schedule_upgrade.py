"""A job store written by an earlier package layout still loads, its missed send kept.

Each fixture store was written by the scheduler of an earlier layout, at 12:00 on 17 June 2026
in Brussels, with a send due at 13:00 that day and a proof on the last Thursday:

* before the package moved into rooms: jobs stored as ``newsflash.jobs:run_send``, triggers of
  class ``newsflash.schedule.WallClockCronTrigger``;
* before the timetable was split off the scheduler: jobs as ``newsflash.schedule.jobs:run_send``
  (where they still are), triggers of class ``newsflash.schedule.scheduler.WallClockCronTrigger``
  (written by tests/write_scheduler_store.py from a checkout of that layout, commit f640cbb).

The tests run at 14:00 (conftest's fixed instant): the send is a missed run within its six
hours of grace, as after an upgrade that kept the scheduler down over the send time.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from calendar_helpers import running, sent_files, set_schedule, wait_for

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.schedule.scheduler import open_scheduler, store_path, stored_jobs
from newsflash.schedule.timetable import WallClockCronTrigger
from newsflash.schedule.upgrade import upgrade_job_store
from newsflash.state.ledger import Ledger
from newsflash.state.ledgers import ledger_path

STORES = Path(__file__).parent / "fixtures" / "scheduler"
OLD_STORE = STORES / "store-written-before-the-package-move.sqlite"
ROOMS_STORE = STORES / "store-written-before-the-timetable-was-split-off.sqlite"
JOBS = {
    "send": {"year": 2026, "month": 6, "day": 17, "hour": 13},
    "proof": {"day": "last thu", "hour": 10},
}


def _install_old_store(workspace: Path, store: Path = OLD_STORE) -> Path:
    config = set_schedule(workspace, jobs=JOBS, grace_hours=6)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(store, store_path(config))
    return config.path


def test_a_missed_send_stored_by_the_earlier_layout_runs_once_after_the_upgrade(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _the_missed_send_runs_once(workspace, OLD_STORE, caplog)


def test_a_missed_send_stored_before_the_timetable_was_split_off_runs_once_after_the_upgrade(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _the_missed_send_runs_once(workspace, ROOMS_STORE, caplog)


def _the_missed_send_runs_once(
    workspace: Path, store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _install_old_store(workspace, store)
    config = set_schedule(workspace, jobs=JOBS, grace_hours=6)
    assert set(stored_jobs(config)) == {"send", "proof"}
    with running(config) as scheduler:
        wait_for(lambda: sent_files(config, "2026-06"), timeout=10)
        proof = scheduler.get_job("proof")
        assert proof is not None and proof.func_ref == "newsflash.schedule.jobs:run_proof"
        assert type(proof.trigger) is WallClockCronTrigger
    assert "Unable to restore job" not in caplog.text
    assert "carried over from the earlier package layout" in caplog.text
    with Ledger(ledger_path(config, "outbox")) as ledger:
        st = ledger.status("2026-06")
    assert st.total > 0 and st.accepted == st.total == len(sent_files(config, "2026-06"))


@pytest.mark.parametrize("store", [OLD_STORE, ROOMS_STORE], ids=["single modules", "rooms"])
def test_upgrading_a_store_twice_changes_nothing_the_second_time(
    workspace: Path, store: Path
) -> None:
    _install_old_store(workspace, store)
    config = set_schedule(workspace, jobs=JOBS, grace_hours=6)
    assert sorted(upgrade_job_store(store_path(config))) == ["proof", "send"]
    assert upgrade_job_store(store_path(config)) == []


def test_no_store_or_an_empty_file_is_left_alone(tmp_path: Path) -> None:
    assert upgrade_job_store(tmp_path / "missing.sqlite") == []
    (tmp_path / "empty.sqlite").write_bytes(b"")
    assert upgrade_job_store(tmp_path / "empty.sqlite") == []


# -- a store this newsflash cannot read: refused in one line, nothing in it changed -------------


def _store_with(workspace: Path, edit: Callable[[Path], None]) -> tuple[Config, bytes]:
    _install_old_store(workspace, ROOMS_STORE)
    config = set_schedule(workspace, jobs=JOBS, grace_hours=6)
    edit(store_path(config))
    return config, store_path(config).read_bytes()


def _trigger_class_renamed(path: Path) -> None:
    """A trigger class no layout ever had (same length, so the pickle stays well formed)."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for job_id, blob in conn.execute("SELECT id, job_state FROM apscheduler_jobs").fetchall():
            blob = blob.replace(b"WallClockCronTrigger", b"TriggerFromTheFuture")
            conn.execute("UPDATE apscheduler_jobs SET job_state = ? WHERE id = ?", (blob, job_id))


def _send_job_garbled(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE apscheduler_jobs SET job_state = ? WHERE id = 'send'", (b"\x80junk",))


def _not_a_database(path: Path) -> None:
    path.write_bytes(b"this is a text file, not a job store\n" * 200)


@pytest.mark.parametrize(
    "edit,named",
    [
        (_trigger_class_renamed, "TriggerFromTheFuture"),
        (_send_job_garbled, "job 'send' cannot be read"),
        (_not_a_database, "not an SQLite job store"),
    ],
    ids=["a class no layout had", "a job's bytes garbled", "not a database"],
)
def test_a_store_that_cannot_be_read_is_refused_naming_the_file_and_left_as_it_was(
    workspace: Path, edit: Callable[[Path], None], named: str
) -> None:
    config, before = _store_with(workspace, edit)
    with pytest.raises(NewsflashError) as refused:
        open_scheduler(config)
    message = str(refused.value)
    assert str(store_path(config)) in message and named in message
    assert "move the file aside" in message and "send it by hand" in message
    assert store_path(config).read_bytes() == before
