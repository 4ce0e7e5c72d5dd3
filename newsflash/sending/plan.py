"""The checks before a send, and the dry run: what a send would do, with nothing written.

* **What is sent.** A build whose checks report an error is refused (BuildError). Item files
  with errors do not stop the send: they are left out of the edition (as `newsflash build`
  does), listed in the report's `left_out`, and the CLI shows them before asking to confirm.
* **Unchanged.** An edition partners already have in part can't change (LedgerError naming
  the files that did).
* **Approved.** With [schedule] require_approval, `send_edition` itself refuses an edition not
  approved as it builds now (sending/approval.require_approved); the scheduled send holds it
  first and tells the reviewers, `newsflash send` says so before any count.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from typing import Any

from newsflash import pipeline
from newsflash.config import Config
from newsflash.errors import BuildError, LedgerError, NewsflashError
from newsflash.message import Message, message_from
from newsflash.personalise import Person
from newsflash.sending.approval import diff_manifests
from newsflash.sending.audience import Audience
from newsflash.sending.report import SendReport, is_skipped, skipped_count
from newsflash.sending.settle import held_back_note, settle_from_events, uncertain_cutoff
from newsflash.state.ledger import EditionStatus, LedgerRecipient
from newsflash.state.ledgers import build_edition, open_existing
from newsflash.transports.base import Transport

__all__ = [
    "Prepared",
    "check_build",
    "dry_run",
    "left_out",
    "prepare",
    "refuse_if_changed",
    "signing_env",
]


@dataclass(frozen=True)
class Prepared:
    """A send's inputs, checked: the build, its message, the audience, the ledger to write."""

    build: pipeline.BuiltEdition
    message: Message
    audience: Audience
    ledger_name: str


def check_build(build: pipeline.BuiltEdition) -> None:
    errors = [c for c in build.email.checks if c.level == "error"]
    if errors:
        raise BuildError(
            f"edition {build.edition.id} can't be sent: "
            + "; ".join(f"{c.name}: {c.message}" for c in errors)
            + f" (see `newsflash build {build.edition.id}`)"
        )
    if not build.edition.items:
        raise BuildError(
            f"edition {build.edition.id} has no items, so there is nothing to send; "
            "see `newsflash build` for the items left out and why"
        )


def signing_env(ledger_name: str) -> dict[str, str] | None:
    """Where unsubscribe tokens are signed from. Through SendGrid NEWSFLASH_SECRET is required
    (a partner must be able to leave); an outbox rehearsal without it shows sample tokens."""
    if ledger_name == "outbox" and not os.environ.get("NEWSFLASH_SECRET"):
        return None
    return dict(os.environ)


def left_out(build: pipeline.BuiltEdition) -> tuple[tuple[str, str], ...]:
    return tuple((lo.key, lo.reason) for lo in build.edition.left_out)


def prepare(
    config: Config,
    edition_id: str,
    transport: Transport,
    build: pipeline.BuiltEdition | None = None,
) -> Prepared:
    """Build (unless given), check, and read the audience; refuse what can't be sent."""
    lname = transport.ledger_name
    build = build or build_edition(config, edition_id, ledger_name=lname)
    if build.edition.id != edition_id:
        raise BuildError(f"the build given is edition {build.edition.id}, not {edition_id}")
    check_build(build)
    message = message_from(config, build.email, environ=signing_env(lname))
    audience = Audience(config)
    if not audience:
        raise NewsflashError(
            f"no one to send to: {config.subscribers_path} has no subscribed partner in the "
            f"audience segments ({', '.join(config.model.audience.segments) or 'all'}); "
            "run `newsflash subscribers`"
        )
    return Prepared(build, message, audience, lname)


def same_edition(frozen_hash: str | None, build: pipeline.BuiltEdition) -> str | None:
    """The hash the ledger knows this edition by, if `frozen_hash` is this edition's
    (Edition.known_as); None if not."""
    return frozen_hash if build.edition.known_as(frozen_hash) else None


def refuse_if_changed(
    edition_id: str,
    frozen: dict[str, Any] | None,
    status: EditionStatus,
    build: pipeline.BuiltEdition,
) -> None:
    """An edition partners already have can't change: say which files did, and whether
    anyone still waits for it (if nobody does, restoring the files would achieve nothing)."""
    if status.manifest_hash is None or same_edition(status.manifest_hash, build) is not None:
        return
    changes = "; ".join(diff_manifests(frozen or {}, build.edition.manifest))
    skipped = skipped_count(status)
    if not (status.pending or status.in_flight or status.uncertain or status.failed - skipped):
        left = f" ({skipped} left the audience before theirs went)" if skipped else ""
        raise LedgerError(
            f"edition {edition_id} is complete: {status.accepted} recipient(s) have it{left} "
            f"and nobody waits, so nothing more is sent. Changed since the send: {changes}. "
            "Changes to templates or config.toml show in the next edition; an item already "
            'sent goes into a later one only if pinned there (edition: "YYYY-MM").'
        )
    raise LedgerError(
        f"edition {edition_id} changed after sending started ({changes}), so it can't be "
        "sent as the same edition. Restore those files as they were to finish the send "
        f"(`newsflash status {edition_id}` shows who still waits); changes go into the "
        "next edition."
    )


@dataclass(frozen=True)
class _Started:
    """What the ledger holds of a send that started: its status, resume order, manifest, and
    the uncertain recipients --resend-uncertain would leave for now (and why)."""

    status: EditionStatus
    order: list[LedgerRecipient]
    manifest: dict[str, Any] | None
    held_back: tuple[int, str]


def _started(config: Config, ready: Prepared, edition_id: str, again: bool) -> _Started | None:
    """The ledger as the next run would find it; what SendGrid's events proved is recorded
    first (settle.py), the one write a dry run makes, since it sends nothing."""
    ledger = open_existing(config, ready.ledger_name)
    if ledger is None:
        return None
    with ledger:
        settle_from_events(config, ledger, ready.ledger_name, edition_id)
        status = ledger.status(edition_id)
        if status.manifest_hash is None:
            return None
        cutoff = uncertain_cutoff(config)
        order = ledger.resume_order(edition_id, resend_uncertain=again, uncertain_before=cutoff)
        held = (ledger.held_back(edition_id, cutoff)[0], held_back_note(config, ledger, edition_id))
        return _Started(status, order, ledger.manifest(edition_id), held if again else (0, ""))


def _counts(started: _Started, audience: Audience, again: bool) -> tuple[int, int, int]:
    """(total, already accepted, to send) of a send that started, as the next run sees it."""
    status = started.status
    retry = status.failed - skipped_count(status)
    uncertain = status.uncertain + status.in_flight - started.held_back[0] if again else 0
    back = sum(  # skipped earlier, in the audience again now: the send takes them
        1
        for address, reason in status.failed_recipients
        if is_skipped(reason) and address in audience
    )
    return status.total, status.accepted, status.pending + retry + uncertain + back


def _first_batch(started: _Started | None, audience: Audience, size: int) -> list[Person]:
    if started is not None:
        first: list[Person] = []
        for at in range(0, len(started.order), size):  # a query a batch, not a partner
            people = audience.people(started.order[at : at + size])
            first += itertools.islice((p for p in people if p is not None), size - len(first))
            if len(first) == size:
                break
        if first:
            return first
    return audience.first(size)


def dry_run(
    config: Config,
    edition_id: str,
    transport: Transport,
    ready: Prepared,
    resend_uncertain: bool,
) -> SendReport:
    """Counts and the first request, from the ledger if the send started; sends nothing."""
    started = _started(config, ready, edition_id, resend_uncertain)
    status = started.status if started is not None else None
    if started is not None:
        refuse_if_changed(edition_id, started.manifest, started.status, ready.build)
        total, already, to_send = _counts(started, ready.audience, resend_uncertain)
    else:
        total, already, to_send = (len(ready.audience), 0, len(ready.audience))
    first = _first_batch(started, ready.audience, transport.max_batch)
    return SendReport(
        edition_id=edition_id,
        transport=ready.ledger_name,
        total=total,
        already_accepted=already,
        accepted_now=0,
        failed=0,
        uncertain=status.uncertain + status.in_flight if status else 0,
        requests=_requests(transport, to_send),
        first_request=(
            transport.describe_request(first, ready.message) if first and to_send else None
        ),
        status=status,
        to_send=to_send,
        left_out=left_out(ready.build),
        subscriber_problems=ready.audience.problems,
        held_back=started.held_back[1] if started is not None else "",
        dry_run=True,
    )


def _requests(transport: Transport, to_send: int) -> int:
    """Requests a send would make; the outbox makes none (it writes files)."""
    if transport.name != "sendgrid" or not to_send:
        return 0
    return math.ceil(to_send / transport.max_batch)
