"""What the scheduler's jobs tell people: the call for items, the proof, and the notices to the
reviewers when a send is held, fails, is missed or is interrupted.

The texts are built here from config and the facts a job gathered, so each reads the same
wherever it is sent from; `notify` sends one through the configured transport, or logs that
there is no one to send it to.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from newsflash.config import Config
from newsflash.months import MONTHS, edition_number, month_label
from newsflash.pipeline import BuiltEdition
from newsflash.schedule.timetable import coming_edition, next_send_time, zone
from newsflash.sending.approval import approval_state
from newsflash.transports.base import Transport
from newsflash.transports.factory import make_transport
from newsflash.web.guide import guide_url

__all__ = [
    "edition_name",
    "failed_text",
    "held_text",
    "interrupted_send_text",
    "missed_send_text",
    "notify",
    "proof_text",
    "reminder_text",
]

log = logging.getLogger("newsflash.schedule.jobs")  # the jobs' log: one place to read

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _day(moment: dt.date) -> str:
    return f"{DAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def _when(moment: dt.datetime, tz: dt.tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{_day(local.date())} at {local:%H:%M} ({tz})"


def notify(
    config: Config, to: Sequence[str], subject: str, text: str, transport: Transport | None = None
) -> str:
    """Send a notice if there is anyone to send it to; returns what happened, for the log."""
    if not to:
        log.warning("no one to tell (config.toml [schedule] lists no addresses): %s", subject)
        return "no addresses configured"
    (transport or make_transport(config)).send_notice(list(to), subject, text)
    return f"told {', '.join(to)}"


def edition_name(config: Config, edition_id: str) -> str:
    nl = config.model.newsletter
    return (
        f"{nl.name} No. {edition_number(edition_id, nl.first_edition)} "
        f"({month_label(edition_id)}, edition {edition_id})"
    )


# -- the call for items ------------------------------------------------------------------------


def reminder_text(config: Config, now: dt.datetime) -> tuple[str, str, str]:
    """Edition id, subject and text of the call for items."""
    edition_id = coming_edition(config, now)
    send_at = next_send_time(config, now)
    subject, lines = _deadline(config, edition_id, send_at)
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
        f"The full guide, with every field: {guide_url(config)}",
    ]
    return edition_id, subject, "\n".join(lines) + "\n"


def _deadline(
    config: Config, edition_id: str, send_at: dt.datetime | None
) -> tuple[str, list[str]]:
    """The call's subject and opening: the send date and the deadline, when there is a send."""
    newsletter = config.model.newsletter.name
    name = edition_name(config, edition_id)
    if send_at is None:
        return f"{newsletter} {edition_id}: call for items", [
            f"Items are welcome for the next {name}.",
            "",
        ]
    tz = zone(config)
    days = config.model.schedule.deadline_days
    deadline = (send_at.astimezone(tz) - dt.timedelta(days=days)).date()
    return f"{newsletter} {edition_id}: please send your items by {_day(deadline)}", [
        f"The next {name} goes out on {_when(send_at, tz)}.",
        f"Please send your items by {_day(deadline)} (the deadline).",
        "",
    ]


# -- the proof ---------------------------------------------------------------------------------


def proof_text(
    config: Config,
    build: BuiltEdition,
    sent_to: Sequence[str],
    failures: Sequence[str],
    send_at: dt.datetime | None,
) -> tuple[str, str]:
    e = build.edition
    subject = f"Proof: {edition_name(config, e.id)}, {len(e.items)} item(s)"
    lines = [f"The proof of {edition_name(config, e.id)}: {build.email.subject}", ""]
    if sent_to:
        lines.append(f"A test copy (subject marked [TEST]) went to: {', '.join(sent_to)}.")
    lines += [f"Test copy NOT sent: {f}" for f in failures]
    if send_at is not None:
        lines.append(f"The send is due on {_when(send_at, zone(config))}.")
    lines += _contents(build)
    lines.append("")
    lines += _approval(config, build)
    return subject, "\n".join(lines) + "\n"


def _contents(build: BuiltEdition) -> list[str]:
    """What is in the edition, what was left out and why, and what the checks found."""
    e = build.edition
    lines = ["", "In this edition:"]
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
    return (
        lines
        + ["", "Checks:"]
        + [f"  {c.level}: {c.name}: {c.message}" for c in build.email.checks]
    )


def _approval(config: Config, build: BuiltEdition) -> list[str]:
    """Whether the edition still needs approving, and how."""
    if not config.model.schedule.require_approval:
        return ["Approval is not required: the edition goes out as it builds at send time."]
    edition_id = build.edition.id
    state = approval_state(config, edition_id, build)
    if state.approved:
        return [state.describe() + "."]
    return [
        f"If it is right, approve it: newsflash approve {edition_id}",
        "An edition that is not approved, or that changes after approval, is "
        "held at send time, not sent.",
    ]


# -- the reviewers' notices about a send ---------------------------------------------------------


def held_text(
    config: Config, edition_id: str, why: str, sent: str, until: dt.datetime | None = None
) -> tuple[str, str]:
    """`until`: the end of the grace period, when an approval given before it sends the
    edition by itself; None when only a send by hand will."""
    subject = f"{config.model.newsletter.name} {edition_id} was NOT sent: held"
    if until is not None:
        after = (
            f"Approved before {_when(until, zone(config))}, it is sent by the scheduler "
            f"within a minute of the approval; after that, send it by hand: newsflash send "
            f"{edition_id}\n"
        )
    else:
        after = (
            f"When it is right, send it by hand: newsflash send {edition_id}\n"
            "(the scheduler does not retry this month's send by itself).\n"
        )
    text = (
        f"The scheduled send of {edition_name(config, edition_id)} was held; {sent}.\n\n"
        f"{why}\n\n{after}"
    )
    return subject, text


def failed_text(config: Config, edition_id: str, error: Exception, job: str) -> tuple[str, str]:
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
        f"The scheduled {job} of {edition_name(config, edition_id)} stopped with an "
        f"error:\n\n{error}\n\n{after}"
    )
    return subject, text


def missed_send_text(
    config: Config, edition_id: str, due: dt.datetime, late_hours: float, sent: str, lname: str
) -> tuple[str, str]:
    grace = config.model.schedule.grace_hours
    subject = f"{config.model.newsletter.name} {edition_id} was NOT sent: the send was missed"
    text = (
        f"The send of edition {edition_id} due on {_when(due, zone(config))} was missed by "
        f"{late_hours:.1f} hours (the scheduler was not running; the grace period is {grace:g} "
        "hours). It was not sent late on purpose: a late edition is worse than one sent by hand.\n"
        f"So far {sent} (ledger {lname}).\n"
        f"\nSend it by hand with: newsflash send {edition_id}\n"
    )
    return subject, text


def interrupted_send_text(
    config: Config,
    edition_id: str,
    due: dt.datetime,
    late_hours: float,
    accepted: int,
    total: int,
) -> tuple[str, str]:
    grace = config.model.schedule.grace_hours
    subject = (
        f"{config.model.newsletter.name} {edition_id} was only partly sent: "
        "the send was interrupted"
    )
    sent = f"{accepted} of {total} sent" if total else "Nothing was sent yet"
    text = (
        f"The scheduled send of {edition_name(config, edition_id)}, due on "
        f"{_when(due, zone(config))}, was interrupted, and the scheduler came back "
        f"{late_hours:.1f} hours after it was due (the grace period is {grace:g} hours), so it "
        f"did not resume it.\n\n{sent}; finish it with `newsflash send {edition_id}` "
        "(it never resends anyone already accepted).\n"
    )
    return subject, text
