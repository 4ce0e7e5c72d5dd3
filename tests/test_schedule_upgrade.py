"""A job store written before the package moved into rooms still loads, its missed send kept.

The fixture store was written by the scheduler of the earlier layout (jobs stored as
``newsflash.jobs:run_send`` with triggers of class ``newsflash.schedule.WallClockCronTrigger``),
at 12:00 on 17 June 2026 in Brussels, with a send due at 13:00 that day and a proof on the last
Thursday. The tests run at 14:00 (conftest's fixed instant): the send is a missed run within
its six hours of grace, as after an upgrade that kept the scheduler down over the send time.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from calendar_helpers import running, sent_files, set_schedule, wait_for

from newsflash.schedule.scheduler import store_path, stored_jobs
from newsflash.schedule.upgrade import upgrade_job_store
from newsflash.state.ledger import Ledger
from newsflash.state.ledgers import ledger_path

OLD_STORE = (
    Path(__file__).parent
    / "fixtures"
    / "scheduler"
    / "store-written-before-the-package-move.sqlite"
)
JOBS = {
    "send": {"year": 2026, "month": 6, "day": 17, "hour": 13},
    "proof": {"day": "last thu", "hour": 10},
}


def _install_old_store(workspace: Path) -> Path:
    config = set_schedule(workspace, jobs=JOBS, grace_hours=6)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(OLD_STORE, store_path(config))
    return config.path


def test_a_missed_send_stored_by_the_earlier_layout_runs_once_after_the_upgrade(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _install_old_store(workspace)
    config = set_schedule(workspace, jobs=JOBS, grace_hours=6)
    assert set(stored_jobs(config)) == {"send", "proof"}
    with running(config) as scheduler:
        wait_for(lambda: sent_files(config, "2026-06"), timeout=10)
        proof = scheduler.get_job("proof")
        assert proof is not None and proof.func_ref == "newsflash.schedule.jobs:run_proof"
    assert "Unable to restore job" not in caplog.text
    assert "carried over from the earlier package layout" in caplog.text
    with Ledger(ledger_path(config, "outbox")) as ledger:
        st = ledger.status("2026-06")
    assert st.total > 0 and st.accepted == st.total == len(sent_files(config, "2026-06"))


def test_upgrading_a_store_twice_changes_nothing_the_second_time(workspace: Path) -> None:
    _install_old_store(workspace)
    config = set_schedule(workspace, jobs=JOBS, grace_hours=6)
    assert sorted(upgrade_job_store(store_path(config))) == ["proof", "send"]
    assert upgrade_job_store(store_path(config)) == []


def test_no_store_or_an_empty_file_is_left_alone(tmp_path: Path) -> None:
    assert upgrade_job_store(tmp_path / "missing.sqlite") == []
    (tmp_path / "empty.sqlite").write_bytes(b"")
    assert upgrade_job_store(tmp_path / "empty.sqlite") == []
