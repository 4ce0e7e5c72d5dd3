"""Where a send left things, and where an edition stands: the report a person reads.

`SendReport` is what a send (or a dry run, or a test copy) returns; `edition_status` gathers,
for `newsflash status`, every ledger that holds the edition (settled first by SendGrid's events:
settle.py); `status_lines` says what to do next; `suppressed_partners` counts who of the list
no send will mail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsflash.config import Config
from newsflash.errors import NewsflashError, SubscribersError
from newsflash.sending.approval import status_line
from newsflash.sending.settle import settle_from_events
from newsflash.state.ledger import EditionStatus
from newsflash.state.ledgers import LEDGER_FILES, ledger_path, open_existing
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscribers import load_subscribers

__all__ = [
    "SKIPPED_SUFFIX",
    "EditionReport",
    "LedgerView",
    "SendReport",
    "Suppressed",
    "edition_status",
    "is_skipped",
    "skipped_count",
    "status_lines",
    "suppressed_partners",
]

SKIPPED_SUFFIX = " since the send started (not sent)"


@dataclass(frozen=True)
class SendReport:
    """Where a send (or a dry run, or a test copy) left things."""

    edition_id: str
    transport: str
    total: int  # recipients of the edition (frozen in the ledger; the audience for a dry run)
    already_accepted: int  # accepted by earlier runs
    accepted_now: int
    failed: int  # definitely not sent, will be retried by the next run (skipped excluded)
    uncertain: int  # may or may not have been accepted; resent only with --resend-uncertain
    requests: int  # HTTP requests made (estimated for a dry run)
    first_request: dict[str, Any] | None = None  # dry run: what the first request would be
    status: EditionStatus | None = None  # the ledger after the run
    skipped: int = 0  # no longer in the audience since the send started
    to_send: int = 0  # recipients this run set out to send
    left_out: tuple[tuple[str, str], ...] = ()  # items not in the edition, with the reason
    subscriber_problems: int = 0  # rows of subscribers.csv skipped or merged
    stopped: str = ""  # why the run stopped before the end, if it did
    settled: int = 0  # uncertain recipients SendGrid's events proved accepted (settle.py)
    held_back: str = ""  # why --resend-uncertain left some for now, and until when
    synced: str = ""  # what the sync with SendGrid's suppression lists before the send did
    dry_run: bool = False
    test: bool = False
    message_id: str | None = None  # a test copy: the transport's id (the outbox: its file)

    @property
    def complete(self) -> bool:
        """Every recipient accepted or skipped: nothing left to do for this edition."""
        return (
            not self.dry_run
            and not self.test
            and self.total > 0
            and not self.stopped
            and self.already_accepted + self.accepted_now + self.skipped == self.total
        )


def is_skipped(reason: str) -> bool:
    return reason.endswith(SKIPPED_SUFFIX)


def skipped_count(status: EditionStatus) -> int:
    return sum(1 for _, reason in status.failed_recipients if is_skipped(reason))


def status_lines(status: EditionStatus) -> Sequence[str]:
    """What to do next, in words, for `newsflash status` and the send summary."""
    eid = status.edition_id
    if status.manifest_hash is None:
        return [
            f"Edition {eid} has not been sent. Try `newsflash send {eid} --dry-run`, then "
            f"`newsflash send {eid} --to you@example.org` for a test copy."
        ]
    skipped = skipped_count(status)
    failed = status.failed - skipped
    lines: list[str] = []
    if status.in_flight:
        lines.append(
            f"{status.in_flight} recipient(s) were in flight when a send stopped "
            "without an answer; the next `newsflash send` records them as uncertain."
        )
    if status.pending or failed:
        lines.append(
            f"{status.pending + failed} recipient(s) still to send: run "
            f"`newsflash send {eid}` again; it resumes and never resends anyone "
            "accepted."
        )
    if status.uncertain:
        lines.append(
            f"{status.uncertain} recipient(s) are uncertain: SendGrid may have accepted them "
            "but no answer came, and no SendGrid event (newsflash serve) has yet shown they "
            "were; those that come are recorded here as accepted. `newsflash send "
            f"{eid} --resend-uncertain` resends the others once their batch is "
            "[sendgrid] resend_uncertain_after_minutes old (anyone who got it without an event "
            f"reaching newsflash would get it twice; SendGrid's Activity feed, category "
            f"edition-{eid}, tells)."
        )
    if skipped:
        lines.append(
            f"{skipped} recipient(s) left the audience after the send started and were not sent."
        )
    return lines or [f"Done: all {status.accepted} recipient(s) accepted."]


Approval = tuple[str, str, str]  # manifest hash, approved at, approved by (Ledger.approval)


@dataclass(frozen=True)
class LedgerView:
    """One ledger in which the edition's send started."""

    name: str
    path: Path
    status: EditionStatus
    approval: Approval | None  # the first approval found in this ledger or one listed before

    @property
    def skipped(self) -> int:
        return skipped_count(self.status)

    @property
    def unfinished(self) -> bool:
        st = self.status
        return bool(st.pending or st.in_flight or st.failed - self.skipped)


@dataclass(frozen=True)
class EditionReport:
    edition_id: str
    ledgers: tuple[LedgerView, ...]
    approval: Approval | None
    approval_line: str  # approved / not approved / changed since (and what), or why unknown
    list_problem: str  # why the partner list cannot be read, when it matters (else "")


def edition_status(
    config: Config, edition_id: str, ledger_name: str | None = None
) -> EditionReport:
    """Every ledger that has the edition (or only `ledger_name`'s), with the approval and
    whether the partner list can be read now: a send stops, or never starts, on one it can't."""
    views: list[LedgerView] = []
    approval: Approval | None = None
    for name in [ledger_name] if ledger_name else list(LEDGER_FILES):
        ledger = open_existing(config, name)
        if ledger is None:
            continue
        with ledger:
            settle_from_events(config, ledger, name, edition_id)
            st = ledger.status(edition_id)
            approval = approval or ledger.approval(edition_id)
        if st.manifest_hash is not None:
            views.append(LedgerView(name, ledger_path(config, name), st, approval))
    try:
        line = status_line(config, edition_id)
    except NewsflashError as e:
        line = f"unknown: {e}"
    unfinished = any(v.unfinished for v in views)
    problem = _list_problem(config) if unfinished or not views else ""
    return EditionReport(edition_id, tuple(views), approval, line, problem)


@dataclass(frozen=True)
class Suppressed:
    """Partners of subscribers.csv the suppression store keeps out of every send."""

    partners: int
    by_reason: dict[str, int]  # a partner with two reasons (a bounce, then an unsubscribe) in both


def suppressed_partners(config: Config) -> Suppressed | None:
    """What `newsflash status` counts; None when the list can't be read (it says why)."""
    path = config.state_dir / "suppressions.sqlite"
    if not path.exists():
        return Suppressed(0, {})
    try:
        listed = {
            r.email.strip().lower() for r in load_subscribers(config.subscribers_path).recipients
        }
    except SubscribersError:
        return None
    store = SuppressionStore(path)
    try:
        rows = [r for r in store.rows() if r.address in listed]
    finally:
        store.close()
    by_reason = Counter(r.reason for r in rows)
    return Suppressed(len({r.address for r in rows}), dict(sorted(by_reason.items())))


def _list_problem(config: Config) -> str:
    try:
        load_subscribers(config.subscribers_path)
    except SubscribersError as e:
        return str(e)
    return ""
