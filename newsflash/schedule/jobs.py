"""The scheduler's jobs: call for items, proof, send; stored by path (``FUNCS`` in scheduler).

Each job takes the config path as a string (so the job store can keep it), reads config.toml
afresh, does its work and returns one line saying what it did, which the scheduler logs. The
ledger, not the scheduler, guards against a double send: a send job fired twice, or by two
schedulers, finds the edition sent (or being sent) and sends nothing new.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from newsflash.config import Config, load_config
from newsflash.edition import MONTHS, edition_number, month_label
from newsflash.errors import NewsflashError, NotApproved, SendInProgress
from newsflash.pipeline import Build, current_edition_id
from newsflash.state.ledger import EditionStatus
from newsflash.state.ledgers import build_edition, open_existing
from newsflash.transports.base import Transport

__all__ = [
    "STOP",
    "SendStopped",
    "clear_interrupted_send",
    "edition_complete",
    "interrupted_send",
    "report_interrupted_send",
    "report_missed_send",
    "run_proof",
    "run_reminder",
    "run_send",
]

log = logging.getLogger("newsflash.schedule.jobs")

STOP = threading.Event()
"""Set when the scheduler stops: a send in progress stops after the batch it is sending."""

MARKER_FILE = "scheduler-send.json"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class SendStopped(Exception):
    """Raised between batches when the scheduler is stopping; the ledger is consistent."""


def _load(config_path: str) -> tuple[Config, dt.datetime]:
    from newsflash.schedule.scheduler import zone

    config = load_config(Path(config_path))
    return config, dt.datetime.now(zone(config))


def _transport(config: Config) -> Transport:
    from newsflash.transports.factory import make_transport

    return make_transport(config)


def _day(moment: dt.date) -> str:
    return f"{DAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def _when(moment: dt.datetime, tz: dt.tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{_day(local.date())} at {local:%H:%M} ({tz})"


def _notify(
    config: Config, to: Sequence[str], subject: str, text: str, transport: Transport | None = None
) -> str:
    """Send a notice if there is anyone to send it to; returns what happened, for the log."""
    if not to:
        log.warning("no one to tell (config.toml [schedule] lists no addresses): %s", subject)
        return "no addresses configured"
    (transport or _transport(config)).send_notice(list(to), subject, text)
    return f"told {', '.join(to)}"


def _edition_name(config: Config, edition_id: str) -> str:
    nl = config.model.newsletter
    return (
        f"{nl.name} No. {edition_number(edition_id, nl.first_edition)} "
        f"({month_label(edition_id)}, edition {edition_id})"
    )


# -- reminder ------------------------------------------------------------------------------------


def reminder_text(config: Config, now: dt.datetime) -> tuple[str, str, str]:
    """Edition id, subject and text of the call for items."""
    from newsflash.schedule.scheduler import coming_edition, next_send_time, zone

    tz = zone(config)
    edition_id = coming_edition(config, now)
    send_at = next_send_time(config, now)
    sched = config.model.schedule
    name = _edition_name(config, edition_id)
    lines = []
    if send_at is not None:
        deadline = (send_at.astimezone(tz) - dt.timedelta(days=sched.deadline_days)).date()
        subject = (
            f"{config.model.newsletter.name} {edition_id}: please send your items by "
            f"{_day(deadline)}"
        )
        lines += [
            f"The next {name} goes out on {_when(send_at, tz)}.",
            f"Please send your items by {_day(deadline)} (the deadline).",
            "",
        ]
    else:
        subject = f"{config.model.newsletter.name} {edition_id}: call for items"
        lines += [f"Items are welcome for the next {name}.", ""]
    sections = ", ".join(config.section_keys)
    lines += [
        "How to write an item: one small text file per item, ending in .md, in the",
        "submissions/ folder. Fields between two '---' lines, then your text in Markdown:",
        "",
        "    ---",
        "    title: Your headline",
        f"    section: {config.section_keys[0]}",
        f"    date: {now.date().isoformat()}",
        "    summary: One or two sentences.",
        "    status: ready",
        "    contact: you@example.org",
        "    ---",
        "    Your text: paragraphs, **bold**, lists and [links](https://example.org).",
        "",
        f"Sections: {sections}. Each file is checked as soon as it lands, and the",
        "result goes to the address in 'contact:'.",
        "The full guide, with every field: docs/contributors.md.",
    ]
    return edition_id, subject, "\n".join(lines) + "\n"


def run_reminder(config_path: str) -> str:
    config, now = _load(config_path)
    edition_id, subject, text = reminder_text(config, now)
    done = _notify(config, config.model.schedule.contributors, subject, text)
    return f"call for items for edition {edition_id}: {done}"


# -- proof ---------------------------------------------------------------------------------------


def proof_text(
    config: Config,
    build: Build,
    sent_to: Sequence[str],
    failures: Sequence[str],
    send_at: dt.datetime | None,
) -> tuple[str, str]:
    from newsflash.schedule.scheduler import zone
    from newsflash.sending.approval import approval_state

    e = build.edition
    subject = f"Proof: {_edition_name(config, e.id)}, {len(e.items)} item(s)"
    lines = [f"The proof of {_edition_name(config, e.id)}: {build.email.subject}", ""]
    if sent_to:
        lines.append(f"A test copy (subject marked [TEST]) went to: {', '.join(sent_to)}.")
    lines += [f"Test copy NOT sent: {f}" for f in failures]
    if send_at is not None:
        lines.append(f"The send is due on {_when(send_at, zone(config))}.")
    lines += ["", "In this edition:"]
    for s in e.sections:
        lines += [f"  {s.title}:"] + [f"    - {i.title}  ({i.key})" for i in s.items]
    if not e.items:
        lines.append("  nothing: no item is ready for this edition.")
    lines += ["", "Left out, and why:"]
    lines += [f"  - {lo.key}: {lo.reason}" for lo in e.left_out] or ["  nothing."]
    problems = build.load.problems
    if problems:
        lines += ["", "Item file problems (as newsflash check reports them):"]
        lines += [f"  {p}" for p in problems]
    lines += ["", "Checks:"] + [f"  {c.level}: {c.name}: {c.message}" for c in build.email.checks]
    lines.append("")
    if config.model.schedule.require_approval:
        state = approval_state(config, e.id, build)
        if state.approved:
            lines.append(state.describe() + ".")
        else:
            lines += [
                f"If it is right, approve it: newsflash approve {e.id}",
                "An edition that is not approved, or that changes after approval, is "
                "held at send time, not sent.",
            ]
    else:
        lines.append("Approval is not required: the edition goes out as it builds at send time.")
    return subject, "\n".join(lines) + "\n"


def run_proof(config_path: str) -> str:
    from newsflash.schedule.scheduler import coming_edition, next_send_time
    from newsflash.sending.send import send_test

    config, now = _load(config_path)
    edition_id = coming_edition(config, now)
    transport = _transport(config)
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
            send_test(config, edition_id, reviewer, transport, build=build)
            sent.append(reviewer)
        except NewsflashError as e:
            failures.append(f"{reviewer}: {e}")
            log.warning("proof of %s to %s not sent: %s", edition_id, reviewer, e)
    subject, text = proof_text(config, build, sent, failures, next_send_time(config, now))
    done = _notify(config, reviewers, subject, text, transport)
    return (
        f"proof of edition {edition_id} ({len(build.edition.items)} items, "
        f"{len(build.edition.left_out)} left out): test copy to {len(sent)} reviewer(s), "
        f"{done}"
    )


# -- send ----------------------------------------------------------------------------------------


def _marker(config: Config) -> Path:
    return config.state_dir / MARKER_FILE


def interrupted_send(config: Config) -> tuple[str, dt.datetime] | None:
    """The scheduled send that was stopped or killed before it ended, if any: its edition and
    the time it was due (the grace period counts from there, however often it resumed)."""
    path = _marker(config)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        due = dt.datetime.fromisoformat(str(doc.get("due") or doc["started_at"]))
        if due.tzinfo is None:
            raise ValueError("no time zone")
        return str(doc["edition"]), due
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("%s is unreadable; ignoring it", path)
        path.unlink(missing_ok=True)
        return None


def clear_interrupted_send(config: Config) -> None:
    _marker(config).unlink(missing_ok=True)


def _mark_started(config: Config, edition_id: str, due: dt.datetime) -> None:
    """Note that the scheduled send of `edition_id`, due at `due`, is under way.

    A marker already there for the same edition is kept as it is: a resumed send that is
    interrupted again still counts its grace period from the time it was first due."""
    current = interrupted_send(config)
    if current is not None and current[0] == edition_id:
        return
    path = _marker(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "edition": edition_id,
        "due": due.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    tmp.replace(path)


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


def _default_ledger(config: Config) -> str:
    from newsflash.state.ledgers import default_ledger_name

    return default_ledger_name(config)


def _hold(config: Config, edition_id: str, why: str, transport: Transport, ledger_name: str) -> str:
    clear_interrupted_send(config)  # a held send is finished by hand, not resumed
    sent = _sent_so_far(config, edition_id, ledger_name)
    subject = f"{config.model.newsletter.name} {edition_id} was NOT sent: held"
    text = (
        f"The scheduled send of {_edition_name(config, edition_id)} was held; {sent}.\n\n"
        f"{why}\n\nWhen it is right, send it by hand: newsflash send {edition_id}\n"
        "(the scheduler does not retry this month's send by itself).\n"
    )
    done = _notify(config, config.model.schedule.reviewers, subject, text, transport)
    return f"held edition {edition_id}, {sent} ({why.splitlines()[0]}); {done}"


def _failed(
    config: Config,
    edition_id: str,
    error: Exception,
    transport: Transport | None = None,
    *,
    job: str = "send",
) -> None:
    """Tell the reviewers a scheduled job failed; the scheduler logs the error itself."""
    subject = f"{config.model.newsletter.name} {edition_id}: the scheduled {job} FAILED"
    if job == "send":
        after = (
            f"See `newsflash status {edition_id}`; once the cause is fixed, `newsflash send "
            f"{edition_id}` resumes where it stopped and never resends anyone accepted.\n"
        )
    else:
        after = (
            f"Once the cause is fixed, `newsflash build {edition_id}` (or `newsflash send "
            f"{edition_id} --to YOU`) shows the proof.\n"
        )
    text = (
        f"The scheduled {job} of {_edition_name(config, edition_id)} stopped with an "
        f"error:\n\n{error}\n\n{after}"
    )
    try:
        _notify(config, config.model.schedule.reviewers, subject, text, transport)
    except Exception as e:
        log.error("could not tell the reviewers that the %s of %s failed: %s", job, edition_id, e)


def _stopping(config: Config, edition_id: str, due: dt.datetime) -> str:
    """The scheduler is stopping before this send began: leave it to resume at the next start."""
    _mark_started(config, edition_id, due)
    return (
        f"the scheduler is stopping: the send of edition {edition_id} did not start; it "
        "starts when the scheduler starts again (within the grace period), or by hand with "
        f"`newsflash send {edition_id}`"
    )


def run_send(config_path: str, edition_id: str | None = None) -> str:
    """Send the edition of the month the send was due in (in the newsletter's zone), approved
    and unchanged. `edition_id` is given when an interrupted send resumes."""
    from newsflash.schedule.scheduler import last_send_time
    from newsflash.sending.send import send_edition

    config, now = _load(config_path)
    if edition_id is None:
        # The edition of the time the send was due, not of the time it runs: a send due at
        # 22:00 on the 31st that runs at 00:30 within grace still sends that month's edition.
        due = last_send_time(config, now) or now
        edition_id = current_edition_id(config, due)
    else:
        marker = interrupted_send(config)
        due = marker[1] if marker is not None and marker[0] == edition_id else now
    if STOP.is_set():
        return _stopping(config, edition_id, due)
    transport = _transport(config)
    lname = transport.ledger_name
    if edition_complete(config, edition_id, lname):
        clear_interrupted_send(config)
        return f"edition {edition_id} was already sent to everyone ({lname}); nothing to do"

    def between_batches(done: int, total: int) -> None:
        if STOP.is_set():
            raise SendStopped(f"stopped after {done} of {total} recipient(s)")

    try:
        # Built against the publication ledger (no ledger_name), as `approve`, `status` and
        # the proof build it: the manifest compared is the one the reviewers approved.
        build = build_edition(config, edition_id)
        if not build.edition.items:
            return _hold(
                config, edition_id, f"Edition {edition_id} has no items.", transport, lname
            )
        if STOP.is_set():
            return _stopping(config, edition_id, due)
        _mark_started(config, edition_id, due)
        report = send_edition(
            config, edition_id, transport=transport, build=build, progress=between_batches
        )
    except SendStopped as e:
        return (
            f"send of edition {edition_id} {e}; the rest resumes when the scheduler starts "
            "again (within the grace period), or by hand with "
            f"`newsflash send {edition_id}`"
        )
    except NotApproved as e:  # send_edition holds what the reviewers did not approve
        return _hold(config, edition_id, e.description, transport, lname)
    except SendInProgress:
        return f"another process is sending edition {edition_id}; this run sends nothing"
    except Exception as e:
        clear_interrupted_send(config)
        _failed(config, edition_id, e, transport)
        raise
    clear_interrupted_send(config)
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
        _notify(
            config,
            config.model.schedule.reviewers,
            f"{config.model.newsletter.name} {edition_id}: the send needs attention",
            outcome + f"\n\nSee `newsflash status {edition_id}`.\n",
            transport,
        )
    return outcome


def report_missed_send(config: Config, due: dt.datetime, late_hours: float) -> None:
    """A send beyond grace is reported, not made: tell the reviewers how to send by hand."""
    from newsflash.schedule.scheduler import zone

    edition_id = current_edition_id(config, due)
    lname = _default_ledger(config)
    if edition_complete(config, edition_id, lname):
        log.info(
            "the missed send of edition %s needs nothing: the %s ledger has it sent to everyone",
            edition_id,
            lname,
        )
        return
    grace = config.model.schedule.grace_hours
    sent = _sent_so_far(config, edition_id, lname)
    subject = f"{config.model.newsletter.name} {edition_id} was NOT sent: the send was missed"
    text = (
        f"The send of edition {edition_id} due on {_when(due, zone(config))} was missed by "
        f"{late_hours:.1f} hours (the scheduler was not running; the grace period is {grace:g} "
        "hours). It was not sent late on purpose: a late edition is worse than one sent by hand.\n"
        f"So far {sent} (ledger {lname}).\n"
        f"\nSend it by hand with: newsflash send {edition_id}\n"
    )
    try:
        _notify(config, config.model.schedule.reviewers, subject, text)
    except Exception as e:  # the log line stays even if the notice can't go
        log.error("could not tell the reviewers that the send of %s was missed: %s", edition_id, e)


def report_interrupted_send(
    config: Config, edition_id: str, due: dt.datetime, late_hours: float
) -> None:
    """An interrupted send found past grace at start is not resumed: tell the reviewers."""
    from newsflash.schedule.scheduler import zone

    lname = _default_ledger(config)
    st = _ledger_status(config, edition_id, lname)
    accepted, total = (st.accepted, st.total) if st is not None else (0, 0)
    grace = config.model.schedule.grace_hours
    subject = (
        f"{config.model.newsletter.name} {edition_id} was only partly sent: "
        "the send was interrupted"
    )
    sent = f"{accepted} of {total} sent" if total else "Nothing was sent yet"
    text = (
        f"The scheduled send of {_edition_name(config, edition_id)}, due on "
        f"{_when(due, zone(config))}, was interrupted, and the scheduler came back "
        f"{late_hours:.1f} hours after it was due (the grace period is {grace:g} hours), so it "
        f"did not resume it.\n\n{sent}; finish it with `newsflash send {edition_id}` "
        "(it never resends anyone already accepted).\n"
    )
    try:
        _notify(config, config.model.schedule.reviewers, subject, text)
    except Exception as e:
        log.error(
            "could not tell the reviewers that the send of %s was interrupted: %s", edition_id, e
        )
