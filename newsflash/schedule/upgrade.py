"""Carry a job store written by an earlier package layout over to this one.

APScheduler stores each job pickled, with its function as an import path
(``newsflash.jobs:run_send``) and its trigger's class by module and name
(``newsflash.schedule.WallClockCronTrigger``). When a stored path no longer imports, APScheduler
logs "Unable to restore job" and deletes the job: a send missed while the scheduler was down for
the upgrade would be dropped without a word. So before the store is opened, every job is
rewritten to the paths this layout uses.

Two earlier layouts wrote stores: the single modules (``newsflash.jobs``, the trigger in
``newsflash.schedule``), then the rooms before the timetable was split off (the trigger in
``newsflash.schedule.scheduler``, a module that still exists, so that move is known by name).
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import sqlite3
from pathlib import Path
from typing import Any

from newsflash.errors import NewsflashError

log = logging.getLogger(__name__)

# Where the names a job store refers to (job functions, the trigger class) live now, by the
# module and name an earlier layout stored: (module, None) stands for every name in a module
# that moved whole; (module, name) for one name that left a module that is still there.
MOVED_MODULES: dict[tuple[str, str | None], str] = {
    ("newsflash.jobs", None): "newsflash.schedule.jobs",
    ("newsflash.schedule", "WallClockCronTrigger"): "newsflash.schedule.timetable",
    ("newsflash.schedule.scheduler", "WallClockCronTrigger"): "newsflash.schedule.timetable",
}


def new_home(module: str, name: str) -> str:
    """The module that holds `name` now, if an earlier layout stored it under `module`."""
    return MOVED_MODULES.get((module, name)) or MOVED_MODULES.get((module, None)) or module


class _RenamingUnpickler(pickle.Unpickler):
    """Finds a stored class at its new home and notes that the job needs rewriting."""

    renamed = False

    def find_class(self, module: str, name: str) -> Any:
        home = new_home(module, name)
        self.renamed = self.renamed or home != module
        return super().find_class(home, name)


def _moved_func(ref: str) -> str:
    module, sep, name = ref.partition(":")
    return f"{new_home(module, name)}{sep}{name}"


def _unreadable(path: Path, what: str) -> NewsflashError:
    """The store cannot be carried over: say so, and how to start afresh without losing a run
    unnoticed (the file is left as it is)."""
    return NewsflashError(
        f"{path}: {what}. It was not written by a newsflash scheduler this one knows, or it is "
        "damaged; nothing in it was changed. `newsflash schedule list` shows the runs it "
        "holds; then move the file aside and start again: the jobs of config.toml are stored "
        "afresh (a missed send it held is not made then: send it by hand)"
    )


def _job_state(path: Path, job_id: str, blob: bytes) -> tuple[dict[str, Any], bool]:
    """A stored job's state, its names looked up at their new homes; and whether any moved."""
    unpickler = _RenamingUnpickler(io.BytesIO(blob))
    try:
        state = unpickler.load()
    except Exception as e:  # unpickling raises whatever the stored bytes lead it to
        raise _unreadable(
            path, f"job '{job_id}' cannot be read ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(state, dict):
        raise _unreadable(path, f"job '{job_id}' is not an APScheduler job")
    return state, unpickler.renamed


def upgrade_job_store(path: Path) -> list[str]:
    """Rewrite jobs stored under old import paths in place; returns the ids rewritten.

    A store that does not exist, or has no job table yet, is left alone; one that cannot be
    read is refused whole, before anything in it is changed."""
    if not path.exists():
        return []
    rewritten: list[str] = []
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        try:
            rows = conn.execute("SELECT id, job_state FROM apscheduler_jobs").fetchall()
        except sqlite3.OperationalError:  # a store APScheduler has not set up yet
            return []
        except sqlite3.DatabaseError as e:
            raise _unreadable(path, f"not an SQLite job store ({e})") from None
        states = [(str(job_id), *_job_state(path, str(job_id), blob)) for job_id, blob in rows]
        for job_id, state, renamed in states:
            func = _moved_func(str(state.get("func", "")))
            if not renamed and func == state.get("func"):
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
