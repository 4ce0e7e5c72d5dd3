"""What the jobs do besides their main work: the proof's link check, the send's dead-link
warning and the contributors' receipts. Each is advice around the job, so a failure here is
logged and named in the job's line, never fails the proof or the send.
"""

from __future__ import annotations

import logging

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.linkcheck.check import check_links, dead_links_text, known_dead
from newsflash.linkcheck.result import LinkReport
from newsflash.pipeline import BuiltEdition
from newsflash.reports.receipts import send_receipts
from newsflash.schedule import notices
from newsflash.schedule.timetable import coming_edition
from newsflash.state.ledgers import build_edition
from newsflash.transports.base import Transport

__all__ = ["coming_links", "proof_links", "receipts", "warn_dead_links"]

log = logging.getLogger("newsflash.schedule.jobs")  # the jobs' log: one place to read


def coming_links(config: Config) -> tuple[str, LinkReport]:
    """The link check of the edition the next send carries (`newsflash check --links`)."""
    edition = build_edition(config, coming_edition(config)).edition
    return edition.id, check_links(config, edition.items)


def proof_links(config: Config, build: BuiltEdition, transport: Transport) -> str:
    """Check the edition's links; mail each dead one to its item's contact and the reviewers.

    A failed check or notice is logged, never fails the proof: the links are advice."""
    try:
        report = check_links(config, build.edition.items)
        if not report.dead:
            return f"; links: {report.distinct} checked, none dead"
        name = notices.edition_name(config, build.edition.id)
        subject = f"{name}: {len(report.dead)} dead link(s)"
        for contact, dead in report.by_contact().items():
            if contact:
                text = dead_links_text(name, dead, for_contact=True)
                notices.notify(config, [contact], subject, text, transport)
        text = dead_links_text(name, report.dead, for_contact=False)
        notices.notify(config, config.model.schedule.reviewers, subject, text, transport)
    except NewsflashError as e:
        log.warning("the link check of %s did not finish: %s", build.edition.id, e)
        return f"; link check failed: {e}"
    return f"; links: {report.distinct} checked, {len(report.dead)} dead, told their contacts"


def warn_dead_links(config: Config, build: BuiltEdition) -> None:
    """The dead links the last check found, logged; the send goes ahead regardless."""
    for dead in known_dead(config, build.edition.items):
        log.warning("sending with a dead link (last checked): %s", dead)


def receipts(config: Config, edition_id: str, transport: Transport, lname: str) -> str:
    """Each item's contact gets a receipt, once; a failure is logged, the send stands."""
    try:
        done = send_receipts(config, edition_id, transport, lname)
    except NewsflashError as e:
        log.error("the receipts of %s were not sent: %s", edition_id, e)
        return f"; receipts not sent: {e}"
    return f"; receipts: {done}" if done.sent or done.failed else ""
