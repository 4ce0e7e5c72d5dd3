"""The scheduler's jobs: call for items, proof, send; stored by path (``FUNCS`` in scheduler).

Each job takes the config path as a string (so the job store can keep it), reads config.toml
afresh, does its work and returns one line saying what it did, which the scheduler logs. The
ledger, not the scheduler, guards against a double send: a send job fired twice, or by two
schedulers, finds the edition sent (or being sent) and sends nothing new.

Job stores name these functions as ``newsflash.schedule.jobs:run_*``: keep them here, or
teach schedule/upgrade.py where they went.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from newsflash.config import Config, load_config
from newsflash.errors import NewsflashError, SendInProgress
from newsflash.pipeline import BuiltEdition, current_edition_id
from newsflash.reports.report_mail import due_report, mail_report
from newsflash.schedule import followups, notices
from newsflash.schedule.markers import (
    HELD_FILE,
    MARKER_FILE,
    approved_at,
    clear_held_send,
    clear_interrupted_send,
    held_send,
    interrupted_send,
    mark_held,
    mark_started,
)
from newsflash.schedule.timetable import (
    coming_edition,
    grace_seconds,
    last_send_time,
    next_send_time,
    zone,
)
from newsflash.sending import send as sending
from newsflash.sending.approval import approval_state
from newsflash.sending.report import SendReport
from newsflash.state.ledger import EditionStatus
from newsflash.state.ledgers import build_edition, default_ledger_name, open_existing
from newsflash.transports.base import Transport
from newsflash.transports.factory import make_transport

__all__ = [
    "HELD_FILE",
    "MARKER_FILE",
    "STOP",
    "SendStopped",
    "clear_interrupted_send",
    "edition_complete",
    "held_send",
    "interrupted_send",
    "report_interrupted_send",
    "report_missed_send",
    "run_held_send",
    "run_proof",
    "run_reminder",
    "run_report",
    "run_send",
]

log = logging.getLogger("newsflash.schedule.jobs")

STOP = threading.Event()
"""Set when the scheduler stops: a send in progress stops after the batch it is sending."""


class SendStopped(Exception):
    """Raised between batches when the scheduler is stopping; the ledger is consistent."""


def _load(config_path: str) -> tuple[Config, dt.datetime]:
    config = load_config(Path(config_path))
    return config, dt.datetime.now(zone(config))


# -- reminder ------------------------------------------------------------------------------------


def run_reminder(config_path: str) -> str:
    config, now = _load(config_path)
    edition_id, subject, text = notices.reminder_text(config, now)
    done = notices.notify(config, config.model.schedule.contributors, subject, text)
    return f"call for items for edition {edition_id}: {done}"


# -- proof ---------------------------------------------------------------------------------------


def run_proof(config_path: str) -> str:
    config, now = _load(config_path)
    edition_id = coming_edition(config, now)
    transport = make_transport(config)
    try:
        # The publication ledger, as `approve` and the send use: one edition, one manifest.
        build = build_edition(config, edition_id)
    except Exception as e:
        _failed(config, edition_id, e, transport, job="proof")
        raise
    reviewers = config.model.schedule.reviewers
    sent: list[str] = []
    failures: list[str] = []
    for reviewer in reviewers:
        try:
            sending.send_test(config, edition_id, reviewer, transport, build=build)
            sent.append(reviewer)
        except NewsflashError as e:
            failures.append(f"{reviewer}: {e}")
            log.warning("proof of %s to %s not sent: %s", edition_id, reviewer, e)
    send_at = next_send_time(config, now)
    subject, text = notices.proof_text(config, build, sent, failures, send_at)
    done = notices.notify(config, reviewers, subject, text, transport)
    links = followups.proof_links(config, build, transport) if config.model.links.in_proof else ""
    return (
        f"proof of edition {edition_id} ({len(build.edition.items)} items, "
        f"{len(build.edition.left_out)} left out): test copy to {len(sent)} reviewer(s), "
        f"{done}{links}"
    )


# -- report --------------------------------------------------------------------------------------


def run_report(config_path: str) -> str:
    """Mail the report of the last sent edition once `after_send` has passed, and each
    contact how their item did; every note once, however often the job fires."""
    config, now = _load(config_path)
    edition_id = due_report(config, now)
    if edition_id is None:
        return "no report due: no edition sent, or its send began too recently"
    transport = make_transport(config)
    reviewers, contacts = mail_report(config, edition_id, transport)
    return f"report of edition {edition_id}: reviewers {reviewers}; contacts {contacts}"


# -- the ledger's word on how far a send got ----------------------------------------------------


def _ledger_status(config: Config, edition_id: str, ledger_name: str) -> EditionStatus | None:
    ledger = open_existing(config, ledger_name)
    if ledger is None:
        return None
    with ledger:
        return ledger.status(edition_id)


def edition_complete(config: Config, edition_id: str, ledger_name: str) -> bool:
    st = _ledger_status(config, edition_id, ledger_name)
    return st is not None and st.complete


def _sent_so_far(config: Config, edition_id: str, ledger_name: str) -> str:
    """How far the ledger says the edition got, in words: 'nothing was sent' or 'N of M sent'."""
    st = _ledger_status(config, edition_id, ledger_name)
    if st is None or st.total == 0 or st.accepted == 0:
        return "nothing was sent"
    if st.complete:
        return f"all {st.total} recipients were sent it before"
    rest = st.total - st.accepted
    return f"{st.accepted} of {st.total} recipients were sent it before, the other {rest} not"


# -- send ----------------------------------------------------------------------------------------


def _hold(
    config: Config,
    edition_id: str,
    held: tuple[str, bool],
    transport: Transport,
    ledger_name: str,
    due: dt.datetime,
) -> str:
    """Hold the send and tell the reviewers; one held for want of approval waits for it.

    Until the grace period counted from `due` ends, an approval given afterwards sends it
    (`run_held_send`); the reviewers, who are told to approve, need not also send by hand."""
    why, awaits_approval = held
    clear_interrupted_send(config)  # a held send is not resumed as an interrupted one
    until = due + dt.timedelta(seconds=grace_seconds(config))
    waits = awaits_approval and until > dt.datetime.now(dt.UTC)
    if waits:
        mark_held(config, edition_id, due)
    sent = _sent_so_far(config, edition_id, ledger_name)
    subject, text = notices.held_text(config, edition_id, why, sent, until if waits else None)
    done = notices.notify(config, config.model.schedule.reviewers, subject, text, transport)
    return f"held edition {edition_id}, {sent} ({why.splitlines()[0]}); {done}"


# -- a send held for want of approval, sent once approved within the grace period ---------------


def run_held_send(config_path: str) -> str | None:
    """The scheduler's frequent, quiet check: send a held edition once it is approved anew,
    within the grace period counted from when it was due. None (nothing logged) while it waits.

    The send itself is `run_send`, so it checks the approval against the edition as it builds
    now: an approval of something else holds it again, and the reviewers are told again."""
    config = load_config(Path(config_path))
    held = held_send(config)
    if held is None:
        return None
    edition_id, due, approval_then = held
    if dt.datetime.now(dt.UTC) > due + dt.timedelta(seconds=grace_seconds(config)):
        clear_held_send(config)
        return (
            f"the held send of edition {edition_id} is past its grace period and is no longer "
            f"sent when approved; send it by hand with `newsflash send {edition_id}`"
        )
    try:
        if approved_at(config, edition_id) == approval_then:
            return None
    except NewsflashError as e:  # an approval file being written, or damaged: look again later
        log.debug("held send of %s: approval not readable yet: %s", edition_id, e)
        return None
    clear_held_send(config)
    mark_started(config, edition_id, due)  # a stop in the middle resumes, graced from `due`
    return f"edition {edition_id} was approved after its hold: " + run_send(config_path, edition_id)


def _failed(
    config: Config,
    edition_id: str,
    error: Exception,
    transport: Transport | None = None,
    *,
    job: str = "send",
) -> None:
    """Tell the reviewers a scheduled job failed; the scheduler logs the error itself."""
    subject, text = notices.failed_text(config, edition_id, error, job)
    try:
        notices.notify(config, config.model.schedule.reviewers, subject, text, transport)
    except Exception as e:
        log.error("could not tell the reviewers that the %s of %s failed: %s", job, edition_id, e)


def _stopping(config: Config, edition_id: str, due: dt.datetime) -> str:
    """The scheduler is stopping before this send began: leave it to resume at the next start."""
    mark_started(config, edition_id, due)
    return (
        f"the scheduler is stopping: the send of edition {edition_id} did not start; it "
        "starts when the scheduler starts again (within the grace period), or by hand with "
        f"`newsflash send {edition_id}`"
    )


def _due_edition(
    config: Config, now: dt.datetime, edition_id: str | None
) -> tuple[str, dt.datetime]:
    """The edition this send carries and the time it was due.

    The edition of the time the send was due, not of the time it runs: a send due at 22:00 on
    the 31st that runs at 00:30 within grace still sends that month's edition. A resumed send
    names its edition, and its marker keeps the time it was first due."""
    if edition_id is None:
        due = last_send_time(config, now) or now
        return current_edition_id(config, due), due
    marker = interrupted_send(config)
    return edition_id, marker[1] if marker is not None and marker[0] == edition_id else now


def run_send(config_path: str, edition_id: str | None = None) -> str:
    """Send the edition of the month the send was due in (in the newsletter's zone), approved
    and unchanged. `edition_id` is given when an interrupted send resumes."""
    config, now = _load(config_path)
    edition_id, due = _due_edition(config, now, edition_id)
    if STOP.is_set():
        return _stopping(config, edition_id, due)
    transport = make_transport(config)
    lname = transport.ledger_name
    if edition_complete(config, edition_id, lname):
        clear_interrupted_send(config)
        # Receipts a crash or a stop kept back after the last batch go now.
        receipts = followups.receipts(config, edition_id, transport, lname)
        return f"edition {edition_id} was already sent to everyone ({lname}); nothing to do" + (
            receipts
        )
    try:
        # Built against the publication ledger (no ledger_name), as `approve`, `status` and
        # the proof build it: the manifest compared is the one the reviewers approved.
        build = build_edition(config, edition_id)
        held = _why_held(config, edition_id, build)
        if held is not None:
            return _hold(config, edition_id, held, transport, lname, due)
        if STOP.is_set():
            return _stopping(config, edition_id, due)
        mark_started(config, edition_id, due)
        followups.warn_dead_links(config, build)
        report = sending.send_edition(
            config, edition_id, transport=transport, build=build, progress=_between_batches
        )
    except SendStopped as e:
        return (
            f"send of edition {edition_id} {e}; the rest resumes when the scheduler starts "
            "again (within the grace period), or by hand with "
            f"`newsflash send {edition_id}`"
        )
    except SendInProgress:
        return f"another process is sending edition {edition_id}; this run sends nothing"
    except Exception as e:
        clear_interrupted_send(config)
        _failed(config, edition_id, e, transport)
        raise
    clear_interrupted_send(config)
    outcome = _outcome(config, edition_id, report, transport, lname)
    return outcome + (
        followups.receipts(config, edition_id, transport, lname) if report.complete else ""
    )


def _between_batches(done: int, total: int) -> None:
    if STOP.is_set():
        raise SendStopped(f"stopped after {done} of {total} recipient(s)")


def _why_held(config: Config, edition_id: str, build: BuiltEdition) -> tuple[str, bool] | None:
    """Why the scheduled send must not go out as built, and whether an approval would let it
    go; None when it may go now."""
    if not build.edition.items:
        return f"Edition {edition_id} has no items.", False
    if config.model.schedule.require_approval:
        state = approval_state(config, edition_id, build)
        if not state.approved:
            return state.describe(), True
    return None


def _outcome(
    config: Config,
    edition_id: str,
    report: SendReport,
    transport: Transport,
    lname: str,
) -> str:
    """The send's line for the log; a send that needs attention is also told to the reviewers."""
    if report.complete and report.accepted_now == 0:
        return f"edition {edition_id} was already sent to everyone ({lname}); nothing new sent"
    outcome = (
        f"sent edition {edition_id} through {report.transport}: {report.accepted_now} "
        f"accepted now, {report.already_accepted} before, {report.failed} failed, "
        f"{report.uncertain} uncertain, of {report.total}"
    )
    if report.stopped:
        outcome += f"; stopped: {report.stopped}"
    if report.stopped or report.failed or report.uncertain:
        notices.notify(
            config,
            config.model.schedule.reviewers,
            f"{config.model.newsletter.name} {edition_id}: the send needs attention",
            outcome + f"\n\nSee `newsflash status {edition_id}`.\n",
            transport,
        )
    return outcome


# -- what the scheduler reports at start ---------------------------------------------------------


def report_missed_send(config: Config, due: dt.datetime, late_hours: float) -> None:
    """A send beyond grace is reported, not made: tell the reviewers how to send by hand."""
    edition_id = current_edition_id(config, due)
    lname = default_ledger_name(config)
    if edition_complete(config, edition_id, lname):
        log.info(
            "the missed send of edition %s needs nothing: the %s ledger has it sent to everyone",
            edition_id,
            lname,
        )
        return
    sent = _sent_so_far(config, edition_id, lname)
    subject, text = notices.missed_send_text(config, edition_id, due, late_hours, sent, lname)
    try:
        notices.notify(config, config.model.schedule.reviewers, subject, text)
    except Exception as e:  # the log line stays even if the notice can't go
        log.error("could not tell the reviewers that the send of %s was missed: %s", edition_id, e)


def report_interrupted_send(
    config: Config, edition_id: str, due: dt.datetime, late_hours: float
) -> None:
    """An interrupted send found past grace at start is not resumed: tell the reviewers."""
    st = _ledger_status(config, edition_id, default_ledger_name(config))
    accepted, total = (st.accepted, st.total) if st is not None else (0, 0)
    subject, text = notices.interrupted_send_text(
        config, edition_id, due, late_hours, accepted, total
    )
    try:
        notices.notify(config, config.model.schedule.reviewers, subject, text)
    except Exception as e:
        log.error(
            "could not tell the reviewers that the send of %s was interrupted: %s", edition_id, e
        )
