"""What the scheduler picks up as it starts: a send interrupted mid-way, and a send held for
want of approval, which goes out once approved within its grace period.

Both jobs carry their edition; the interrupted send's resume job is stored (a scheduler that
dies before running it leaves it behind, dropped at the next start), the held send's check is
kept in memory and added afresh at every start.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsflash.config import Config
from newsflash.schedule import jobs
from newsflash.schedule.timetable import fmt, grace_seconds, zone
from newsflash.state.ledgers import default_ledger_name

__all__ = [
    "HELD_CHECK_SECONDS",
    "HELD_ID",
    "RESUME_ID",
    "resume_interrupted_send",
    "watch_held_send",
]

log = logging.getLogger("newsflash.schedule.scheduler")

RESUME_ID = "send-resume"
HELD_ID = "send-held"  # the check for an approval of a held send; in memory, never stored
HELD_CHECK_SECONDS = 30.0
SEND_FUNC = "newsflash.schedule.jobs:run_send"


def resume_interrupted_send(scheduler: BackgroundScheduler, config: Config) -> None:
    """A scheduled send stopped (SIGTERM) or killed mid-way resumes at start, within the grace
    period counted from the time it was due; after that the reviewers are told to finish it."""
    marker = jobs.interrupted_send(config)
    if marker is None:
        return
    edition_id, due = marker
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
            fmt(due, zone(config)),
            edition_id,
        )
        jobs.report_interrupted_send(config, edition_id, due, late.total_seconds() / 3600)
        jobs.clear_interrupted_send(config)
        return
    log.info("the scheduled send of edition %s was interrupted; resuming it now", edition_id)
    scheduler.add_job(
        SEND_FUNC,
        trigger=DateTrigger(dt.datetime.now(zone(config))),
        id=RESUME_ID,
        name=RESUME_ID,
        args=(str(config.path), edition_id),
        replace_existing=True,
        misfire_grace_time=grace_seconds(config),
        coalesce=True,
        max_instances=1,
    )


def watch_held_send(scheduler: BackgroundScheduler, config: Config) -> None:
    """Look for the approval of a held send now (it may have come while the scheduler was
    down) and every HELD_CHECK_SECONDS; `jobs.run_held_send` sends it within grace."""
    scheduler.add_job(
        "newsflash.schedule.jobs:run_held_send",
        trigger=IntervalTrigger(seconds=HELD_CHECK_SECONDS, timezone=zone(config)),
        id=HELD_ID,
        name=HELD_ID,
        jobstore="memory",
        args=(str(config.path),),
        next_run_time=dt.datetime.now(zone(config)),
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
    )


def _drop_stored_resume(scheduler: BackgroundScheduler) -> None:
    """A resume job left in the store by a scheduler that died before running it."""
    if scheduler.get_job(RESUME_ID) is not None:
        scheduler.remove_job(RESUME_ID)
