"""The scheduler's jobs: call for items, proof, send. Referenced as ``newsflash.jobs:run_*``.

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
from newsflash.errors import LedgerError, NewsflashError
from newsflash.pipeline import Build, build_edition, current_edition_id, ledger_path
from newsflash.transports.base import Transport

__all__ = [
    "STOP",
    "SendStopped",
    "clear_interrupted_send",
    "edition_complete",
    "interrupted_send",
    "report_missed_send",
    "run_proof",
    "run_reminder",
    "run_send",
]

log = logging.getLogger("newsflash.jobs")

STOP = threading.Event()
"""Set when the scheduler stops: a send in progress stops after the batch it is sending."""

MARKER_FILE = "scheduler-send.json"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class SendStopped(Exception):
    """Raised between batches when the scheduler is stopping; the ledger is consistent."""


def _load(config_path: str) -> tuple[Config, dt.datetime]:
    from newsflash.schedule import zone

    config = load_config(Path(config_path))
    return config, dt.datetime.now(zone(config))


def _transport(config: Config) -> Transport:
    from newsflash.sending import make_transport

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
    from newsflash.schedule import coming_edition, next_send_time, zone

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
    from newsflash.approval import approval_state
    from newsflash.schedule import zone

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
    from newsflash.schedule import coming_edition, next_send_time
    from newsflash.sending import ledger_name_for, send_test

    config, now = _load(config_path)
    edition_id = coming_edition(config, now)
    transport = _transport(config)
    build = build_edition(config, edition_id, ledger_name=ledger_name_for(transport))
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
    """The scheduled send that was stopped or killed before it ended, if any."""
    path = _marker(config)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return str(doc["edition"]), dt.datetime.fromisoformat(str(doc["started_at"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s is unreadable; ignoring it", path)
        path.unlink(missing_ok=True)
        return None


def clear_interrupted_send(config: Config) -> None:
    _marker(config).unlink(missing_ok=True)


def _mark_started(config: Config, edition_id: str) -> None:
    path = _marker(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "edition": edition_id,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    tmp.replace(path)


def edition_complete(config: Config, edition_id: str, ledger_name: str) -> bool:
    from newsflash.ledger import Ledger

    path = ledger_path(config, ledger_name)
    if not path.exists():
        return False
    with Ledger(path) as ledger:
        return ledger.status(edition_id).complete


def _hold(config: Config, edition_id: str, why: str, transport: Transport) -> str:
    subject = f"{config.model.newsletter.name} {edition_id} was NOT sent: held"
    text = (
        f"The scheduled send of {_edition_name(config, edition_id)} was held; nothing was "
        f"sent.\n\n{why}\n\nWhen it is right, send it by hand: newsflash send {edition_id}\n"
        "(the scheduler does not retry this month's send by itself).\n"
    )
    done = _notify(config, config.model.schedule.reviewers, subject, text, transport)
    return f"held edition {edition_id}, nothing sent ({why.splitlines()[0]}); {done}"


def _failed(config: Config, edition_id: str, error: Exception, transport: Transport) -> None:
    """Tell the reviewers a scheduled send failed; the scheduler logs the error itself."""
    subject = f"{config.model.newsletter.name} {edition_id}: the scheduled send FAILED"
    text = (
        f"The scheduled send of {_edition_name(config, edition_id)} stopped with an "
        f"error:\n\n{error}\n\nSee `newsflash status {edition_id}`; once the cause is "
        f"fixed, `newsflash send {edition_id}` resumes where it stopped and never resends "
        "anyone accepted.\n"
    )
    try:
        _notify(config, config.model.schedule.reviewers, subject, text, transport)
    except Exception as e:
        log.error("could not tell the reviewers that the send of %s failed: %s", edition_id, e)


def run_send(config_path: str) -> str:
    """Send this month's edition (in the newsletter's zone), approved and unchanged."""
    from newsflash.approval import approval_state
    from newsflash.sending import ledger_name_for, send_edition

    config, now = _load(config_path)
    edition_id = current_edition_id(config, now)
    transport = _transport(config)
    lname = ledger_name_for(transport)
    if edition_complete(config, edition_id, lname):
        clear_interrupted_send(config)
        return f"edition {edition_id} was already sent to everyone ({lname}); nothing to do"
    build = build_edition(config, edition_id, ledger_name=lname)
    if not build.edition.items:
        return _hold(config, edition_id, f"Edition {edition_id} has no items.", transport)
    if config.model.schedule.require_approval:
        state = approval_state(config, edition_id, build)
        if not state.approved:
            return _hold(config, edition_id, state.describe(), transport)

    def between_batches(done: int, total: int) -> None:
        if STOP.is_set():
            raise SendStopped(f"stopped after {done} of {total} recipient(s)")

    _mark_started(config, edition_id)
    try:
        report = send_edition(
            config, edition_id, transport=transport, build=build, progress=between_batches
        )
    except SendStopped as e:
        return (
            f"send of edition {edition_id} {e}; the rest resumes when the scheduler starts "
            "again (within the grace period), or by hand with "
            f"`newsflash send {edition_id}`"
        )
    except LedgerError as e:
        if "another send" in str(e):
            return f"another process is sending edition {edition_id}; this run sends nothing"
        clear_interrupted_send(config)
        _failed(config, edition_id, e, transport)
        raise
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
    from newsflash.schedule import zone

    edition_id = current_edition_id(config, due)
    grace = config.model.schedule.grace_hours
    subject = f"{config.model.newsletter.name} {edition_id} was NOT sent: the send was missed"
    text = (
        f"The send of edition {edition_id} due on {_when(due, zone(config))} was missed by "
        f"{late_hours:.1f} hours (the scheduler was not running; the grace period is {grace:g} "
        "hours). It was not sent late on purpose: a late edition is worse than one sent by hand.\n"
        f"\nSend it by hand with: newsflash send {edition_id}\n"
    )
    try:
        _notify(config, config.model.schedule.reviewers, subject, text)
    except Exception as e:  # the log line stays even if the notice can't go
        log.error("could not tell the reviewers that the send of %s was missed: %s", edition_id, e)
