"""Carry a job store written by an earlier package layout over to this one.

APScheduler stores each job pickled, with its function as an import path
(``newsflash.jobs:run_send``) and its trigger's class by module (``newsflash.schedule``). When
a stored path no longer imports, APScheduler logs "Unable to restore job" and deletes the job:
a send missed while the scheduler was down for the upgrade would be dropped without a word.
So before the store is opened, every job is rewritten to the paths this layout uses.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import sqlite3
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Where the modules the job store refers to lived before the package was split into rooms.
MOVED_MODULES = {
    "newsflash.schedule": "newsflash.schedule.scheduler",
    "newsflash.jobs": "newsflash.schedule.jobs",
}


class _RenamingUnpickler(pickle.Unpickler):
    """Finds a stored class at its new home and notes that the job needs rewriting."""

    renamed = False

    def find_class(self, module: str, name: str) -> Any:
        if module in MOVED_MODULES:
            self.renamed = True
            module = MOVED_MODULES[module]
        return super().find_class(module, name)


def _moved_func(ref: str) -> str:
    module, sep, name = ref.partition(":")
    return f"{MOVED_MODULES.get(module, module)}{sep}{name}"


def upgrade_job_store(path: Path) -> list[str]:
    """Rewrite jobs stored under old import paths in place; returns the ids rewritten.

    A store that does not exist, or has no job table yet, is left alone."""
    if not path.exists():
        return []
    rewritten: list[str] = []
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        try:
            rows = conn.execute("SELECT id, job_state FROM apscheduler_jobs").fetchall()
        except sqlite3.OperationalError:  # a store APScheduler has not set up yet
            return []
        for job_id, blob in rows:
            unpickler = _RenamingUnpickler(io.BytesIO(blob))
            state = unpickler.load()
            func = _moved_func(str(state.get("func", "")))
            if not unpickler.renamed and func == state.get("func"):
                continue
            state["func"] = func
            conn.execute(
                "UPDATE apscheduler_jobs SET job_state = ? WHERE id = ?",
                (pickle.dumps(state, pickle.HIGHEST_PROTOCOL), job_id),
            )
            rewritten.append(str(job_id))
    for job_id in rewritten:
        log.info("schedule %s: carried over from the earlier package layout", job_id)
    return rewritten
