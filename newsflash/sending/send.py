"""Sending an edition: build, freeze the audience in the ledger, send batch by batch, report.

The CLI (`newsflash send`) and the scheduler both call `send_edition`; all the rules live here:

* **Which transport.** SendGrid when SENDGRID_API_KEY is set, otherwise the outbox
  (`default_transport_name`). Each transport has its own ledger (`ledger_name_for`), so an
  outbox or sandbox rehearsal never marks partners as reached by SendGrid, and the "already
  published" rule for the next edition reads the ledger of the transport a send would use now.
* **What is sent.** A build whose checks report an error is refused (BuildError). Item files
  with errors do not stop the send: they are left out of the edition (as `newsflash build`
  does), listed in the report's `left_out`, and the CLI shows them before asking to confirm.
* **Who.** Subscribed partners in the config's audience segments, frozen into the ledger when
  the send first starts. A frozen recipient who is no longer in the audience when their batch
  comes up (unsubscribed, bounced, complained, removed from subscribers.csv or from the
  segments since the send started) is not sent: they are recorded as failed with a reason
  ending in SKIPPED_SUFFIX, counted as `skipped`, and checked again on every later run. The
  list is re-read between batches whenever the file changes; a changed list that cannot be
  read (moved, half-saved) stops the run, since the list as last read may still hold a
  partner who has opted out since.
* **Exactly once.** Each batch is committed as in flight before its request and settled after
  the answer (ledger.py). A TransportError means the request was definitely not accepted: the
  batch is recorded failed and the error re-raised with where the send stands. A batch that
  failed after its retries stops the run (an outage would fail the rest too); a timeout makes
  the batch uncertain and the send goes on, but two uncertain batches in a row stop it.
  KeyboardInterrupt (and SIGTERM, which the CLI turns into one) leaves the batch in flight; the
  next run records it as uncertain. Uncertain recipients are resent only with
  `resend_uncertain=True`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

from newsflash import pipeline
from newsflash.config import Config
from newsflash.errors import BuildError, LedgerError, NewsflashError, TransportError
from newsflash.message import Message, message_from
from newsflash.personalise import Person
from newsflash.state.ledger import EditionStatus, Ledger, LedgerRecipient
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscribers import SubscriberList, load_subscribers, recipient_id
from newsflash.transports.base import BatchResult, Transport

ENV_KEY = "SENDGRID_API_KEY"
ENV_HOST = "NEWSFLASH_SENDGRID_HOST"
TRANSPORTS = ("sendgrid", "outbox")
SKIPPED_SUFFIX = " since the send started (not sent)"
MAX_UNCERTAIN_IN_A_ROW = 2
DRY_RUN_KEY = "SG.dry-run-placeholder"

Progress = Callable[[int, int], None]
"""progress(done, to_send): recipients settled in this run so far, of those it will send."""


# -- transports and their ledgers ----------------------------------------------------------------


def default_transport_name() -> str:
    """The one rule: SendGrid when a key is set, otherwise the harmless outbox."""
    return "sendgrid" if os.environ.get(ENV_KEY, "").strip() else "outbox"


def ledger_name_for(transport: Transport) -> str:
    """Sandbox mode delivers nothing, so it gets a ledger of its own like the outbox."""
    if transport.name == "sendgrid" and getattr(transport, "sandbox", False) is True:
        return "sendgrid-sandbox"
    return transport.name


def default_ledger_name(config: Config) -> str:
    """The ledger a send would use now (pipeline.build_edition reads its frozen item set)."""
    name = default_transport_name()
    if name == "sendgrid" and config.model.sendgrid.sandbox:
        return "sendgrid-sandbox"
    return name


def make_transport(
    config: Config,
    name: str | None = None,
    *,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Transport:
    """'sendgrid' or 'outbox' (default: `default_transport_name`), configured from config.toml.

    The SendGrid host is config.toml [sendgrid] host unless NEWSFLASH_SENDGRID_HOST is set. A
    dry run may build a SendGrid transport without a key: it never sends.
    """
    name = name or default_transport_name()
    if name == "outbox":
        from newsflash.transports.outbox import OutboxTransport

        return OutboxTransport(
            config.outbox_dir,
            from_email=config.model.sender.from_email,
            from_name=config.model.sender.from_name,
            batch_size=config.model.sendgrid.batch_size,
        )
    if name == "sendgrid":
        from newsflash.transports import sendgrid

        key = os.environ.get(ENV_KEY, "")
        if not key.strip():
            if not dry_run:
                raise NewsflashError(
                    f"sending through SendGrid needs the API key in the environment: "
                    f"{sendgrid.KEY_HELP}, e.g. `export {ENV_KEY}=SG.…` in the shell that runs "
                    "newsflash. Without a key, newsflash writes .eml files to outbox/ instead."
                )
            key = DRY_RUN_KEY
        env_host = os.environ.get(ENV_HOST, "").strip()
        host = (
            sendgrid.check_host(env_host, ENV_HOST)
            if env_host
            else sendgrid.check_host(config.model.sendgrid.host, f"{config.path} [sendgrid] host")
        )
        return sendgrid.from_config(config, key, host=host, sleep=sleep)
    raise NewsflashError(f"unknown transport {name!r}; use one of: {', '.join(TRANSPORTS)}")


# -- the report ----------------------------------------------------------------------------------


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


# -- the audience --------------------------------------------------------------------------------


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


class _Audience:
    """The partner list as it is now; re-read between batches when the file changes."""

    def __init__(self, config: Config) -> None:
        self.path = config.subscribers_path
        self.segments = config.model.audience.segments
        self._stamp = self._stat()
        self.unreadable = ""  # why the changed list could not be read, if it could not
        self._store = config.state_dir / "suppressions.sqlite"
        self._store_stamp: tuple[tuple[int, int] | None, ...] = ()
        self._use(load_subscribers(self.path))

    def _store_stat(self) -> tuple[tuple[int, int] | None, ...]:
        """The suppression store changes in its WAL file first: both are watched."""
        return tuple(
            (st.st_mtime_ns, st.st_size) if (st := _stat_or_none(p)) else None
            for p in (self._store, self._store.with_name(self._store.name + "-wal"))
        )

    def _drop_suppressed(self) -> bool:
        """Take everyone the suppression store names out of the audience, whatever the list
        says (an unsubscribe, bounce or complaint heard by `newsflash serve` or a sync)."""
        self._store_stamp = self._store_stat()
        if not self._store.exists():
            return False
        store = SuppressionStore(self._store)
        try:
            gone = store.suppressed(p.email for p in self.people.values())
        finally:
            store.close()
        if not gone:
            return False
        for rid in [rid for rid, p in self.people.items() if p.email.lower() in gone]:
            del self.people[rid]
            self.elsewhere[rid] = "suppressed (newsflash suppressions list)"
        return True

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _use(self, sl: SubscriberList) -> None:
        """Keep only what sending needs, so the parsed list (the bulk of a send's memory at
        100k partners) is freed before the ledger is filled."""
        self.problems = len(sl.problems)
        in_audience = {id(r) for r in sl.audience(self.segments)}  # the one audience rule
        self.people: dict[str, Person] = {}  # in list order
        self.elsewhere: dict[str, str] = {}  # not in the audience: recipient id -> status
        for r in sl.recipients:
            rid = r.recipient_id  # hashes the address: once per person, not per use
            if id(r) in in_audience:
                self.people[rid] = Person(
                    rid, r.email, r.first_name, f"{r.first_name} {r.last_name}".strip()
                )
            else:
                self.elsewhere[rid] = r.status
        self._drop_suppressed()

    def reload_if_changed(self) -> bool:
        """Re-read a changed list; if it can't be read, `unreadable` says why and the send
        must stop: the list as last read may mail a partner who has since opted out. A
        partner suppressed since the last batch (a one-click unsubscribe) leaves at once."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._store_stat() != self._store_stamp and self._drop_suppressed()
        try:
            sl = load_subscribers(self.path)
        except NewsflashError as e:
            self.unreadable = str(e)
            return False
        self._stamp = stamp
        self.unreadable = ""
        self._use(sl)
        return True

    def reason(self, rid: str) -> str:
        """Why a frozen recipient is not in the audience now."""
        status = self.elsewhere.get(rid)
        if status is None:
            return "removed from subscribers.csv" + SKIPPED_SUFFIX
        what = status if status != "subscribed" else "moved out of the audience segments"
        return what + SKIPPED_SUFFIX

    def skip_gone(self, ledger: Ledger, edition_id: str) -> int:
        """Settle pending recipients who left the audience as failed (skipped)."""
        gone = [
            r.recipient_id
            for r in ledger.pending_recipients(edition_id)
            if r.recipient_id not in self.people
        ]
        if not gone:
            return 0
        by_reason: dict[str, list[str]] = {}
        for rid in gone:
            by_reason.setdefault(self.reason(rid), []).append(rid)
        return sum(
            ledger.skip_pending(edition_id, ids, reason) for reason, ids in by_reason.items()
        )


# -- sending -------------------------------------------------------------------------------------


def _check_build(build: pipeline.BuiltEdition) -> None:
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


def _left_out(build: pipeline.BuiltEdition) -> tuple[tuple[str, str], ...]:
    return tuple((lo.key, lo.reason) for lo in build.edition.left_out)


def send_edition(
    config: Config,
    edition_id: str,
    *,
    transport: Transport | None = None,
    resend_uncertain: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    build: pipeline.BuiltEdition | None = None,
) -> SendReport:
    """Send the edition to every audience member not yet reached (see the module docstring).

    `progress(done, to_send)` is called after each batch has been recorded in the ledger; it
    may raise (e.g. the scheduler stopping) to end the run there, leaving nothing in flight.
    """
    transport = transport or make_transport(config, dry_run=dry_run)
    lname = ledger_name_for(transport)
    build = build or pipeline.build_edition(config, edition_id, ledger_name=lname)
    if build.edition.id != edition_id:
        raise BuildError(f"the build given is edition {build.edition.id}, not {edition_id}")
    _check_build(build)
    message = message_from(config, build.email, environ=_signing_env(lname))
    audience = _Audience(config)
    if not audience.people:
        raise NewsflashError(
            f"no one to send to: {config.subscribers_path} has no subscribed partner in the "
            f"audience segments ({', '.join(config.model.audience.segments) or 'all'}); "
            "run `newsflash subscribers`"
        )
    manifest_hash = build.edition.manifest_hash
    if dry_run:
        return _dry_run(
            config, edition_id, transport, lname, message, audience, build, resend_uncertain
        )

    path = pipeline.ledger_path(config, lname)
    recipients = [LedgerRecipient(p.recipient_id, p.email) for p in audience.people.values()]
    with Ledger(path) as ledger, ledger.sending(edition_id):
        begun = ledger.status(edition_id)
        resuming = begun.manifest_hash is not None
        _refuse_if_changed(edition_id, ledger.manifest(edition_id), begun, build)
        start = ledger.start_send(
            edition_id,
            manifest_hash,
            json.dumps(build.edition.manifest, sort_keys=True),
            recipients,
            resend_uncertain=resend_uncertain,
        )
        if resuming:
            audience.skip_gone(ledger, edition_id)
        to_send = ledger.status(edition_id).pending
        ahead = _Lookahead(transport, ledger, edition_id, None if resuming else recipients)
        done = accepted_now = requests = uncertain_in_a_row = 0
        stopped = ""
        while True:
            if audience.reload_if_changed():
                to_send -= audience.skip_gone(ledger, edition_id)
            if audience.unreadable:
                stopped = _unreadable_list(edition_id, audience.unreadable)
                break
            batch = ledger.next_batch(edition_id, transport.max_batch)
            if batch is None:
                break
            people = [
                audience.people.get(r.recipient_id) or Person(r.recipient_id, r.email)
                for r in batch.recipients
            ]
            ahead.hint(batch.recipients, audience.people, message)
            try:
                result = transport.send(people, message)
            except (KeyboardInterrupt, SystemExit):
                if not transport.request_outstanding:
                    # Stopped in a backoff or rate-limit wait: nothing left, nothing to doubt.
                    ledger.mark_failed(batch.id, "interrupted before the request left (not sent)")
                raise
            except TransportError as e:
                ledger.mark_failed(batch.id, _first_line(str(e)))
                st = ledger.status(edition_id)
                raise TransportError(
                    f"{e}\nThe batch of {len(people)} recipient(s) was recorded as not sent; "
                    f"{st.accepted} of {st.total} have edition {edition_id}. Fix the cause and "
                    f"run `newsflash send {edition_id}` again: it resumes where it stopped.",
                    status=e.status,
                    body=e.body,
                ) from e
            requests += result.requests
            done += len(people)
            stopped, uncertain_in_a_row = _record(ledger, batch.id, result, uncertain_in_a_row)
            if result.outcome == "accepted":
                accepted_now += len(people)
            if progress is not None:
                progress(done, max(to_send, done))
            if stopped:
                break
        ledger.finish(edition_id)
        final = ledger.status(edition_id)
    skipped = skipped_count(final)
    return SendReport(
        edition_id=edition_id,
        transport=lname,
        total=final.total,
        already_accepted=start.accepted,
        accepted_now=accepted_now,
        failed=final.failed - skipped,
        uncertain=final.uncertain + final.in_flight,
        requests=requests,
        status=final,
        skipped=skipped,
        to_send=to_send,
        left_out=_left_out(build),
        subscriber_problems=audience.problems,
        stopped=stopped,
    )


class _Lookahead:
    """Tells a transport that can `prepare` which batch will most likely come next.

    Pending recipients are handed out in ledger order, so the next batch is the next slice of
    that order; a guess gone wrong (someone skipped meanwhile) only costs the transport a
    rebuild, never a wrong request, because the transport checks the batch it is given.
    """

    def __init__(
        self,
        transport: Transport,
        ledger: Ledger,
        edition_id: str,
        order: list[LedgerRecipient] | None,
    ) -> None:
        prepare = getattr(transport, "prepare", None)
        self.prepare: Callable[[Sequence[Person], Message], None] | None = (
            prepare if callable(prepare) else None
        )
        self.ledger = ledger
        self.edition_id = edition_id
        self.size = transport.max_batch
        self.order: list[LedgerRecipient] | None = order
        self.pos = 0

    def hint(
        self, claimed: Sequence[LedgerRecipient], people: dict[str, Person], message: Message
    ) -> None:
        if self.prepare is None:
            return
        n = len(claimed)
        if self.order is None or self.order[self.pos : self.pos + n] != list(claimed):
            self.order, self.pos = self.ledger.pending_recipients(self.edition_id), 0
        else:
            self.pos += n
        upcoming = [
            people[r.recipient_id]
            for r in self.order[self.pos : self.pos + self.size]
            if r.recipient_id in people
        ]
        if upcoming:
            self.prepare(upcoming, message)


def _record(
    ledger: Ledger, batch_id: int, result: BatchResult, uncertain_in_a_row: int
) -> tuple[str, int]:
    """Settle the batch; returns why the run must stop ('' to go on) and the uncertain streak."""
    if result.outcome == "accepted":
        ledger.mark_accepted(batch_id, result.message_id)
        return "", 0
    if result.outcome == "failed":
        ledger.mark_failed(batch_id, result.reason)
        return f"a batch failed: {result.reason}", 0
    ledger.mark_uncertain(batch_id, result.reason)
    uncertain_in_a_row += 1
    if uncertain_in_a_row >= MAX_UNCERTAIN_IN_A_ROW:
        return (
            f"{uncertain_in_a_row} batches in a row got no answer ({result.reason})",
            uncertain_in_a_row,
        )
    return "", uncertain_in_a_row


def _unreadable_list(edition_id: str, error: str) -> str:
    return (
        f"the partner list changed during the send and cannot be read now ({error}); the "
        "send stopped rather than mail partners whose opt-out it could not read. Fix or "
        f"restore the file and run `newsflash send {edition_id}` again: it resumes"
    )


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return " ".join(line.strip() for line in lines[:6])[:1000] if lines else "refused"


def _refuse_if_changed(
    edition_id: str,
    frozen: dict[str, Any] | None,
    status: EditionStatus,
    build: pipeline.BuiltEdition,
) -> None:
    """An edition partners already have can't change: say which files did, and whether
    anyone still waits for it (if nobody does, restoring the files would achieve nothing)."""
    if status.manifest_hash is None or status.manifest_hash == build.edition.manifest_hash:
        return
    from newsflash.sending.approval import diff_manifests

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


def _dry_run(
    config: Config,
    edition_id: str,
    transport: Transport,
    lname: str,
    message: Message,
    audience: _Audience,
    build: pipeline.BuiltEdition,
    resend_uncertain: bool,
) -> SendReport:
    """Counts and the first request, from the ledger if the send started; writes nothing."""
    path = pipeline.ledger_path(config, lname)
    status: EditionStatus | None = None
    pending: list[LedgerRecipient] = []
    frozen: dict[str, Any] | None = None
    if path.exists():
        with Ledger(path) as ledger:
            status = ledger.status(edition_id)
            if status.manifest_hash is None:
                status = None
            else:
                pending = ledger.resume_order(edition_id, resend_uncertain=resend_uncertain)
                frozen = ledger.manifest(edition_id)
    if status is not None:
        _refuse_if_changed(edition_id, frozen, status, build)
    first: list[Person]
    if status is None:
        total, already, to_send = len(audience.people), 0, len(audience.people)
        first = list(itertools.islice(audience.people.values(), transport.max_batch))
    else:
        retry = status.failed - skipped_count(status)
        again = status.uncertain + status.in_flight if resend_uncertain else 0
        in_audience = {p.email.lower() for p in audience.people.values()}
        back = sum(  # skipped earlier, in the audience again now: the send takes them
            1
            for address, reason in status.failed_recipients
            if reason.endswith(SKIPPED_SUFFIX) and address.lower() in in_audience
        )
        total, already = status.total, status.accepted
        to_send = status.pending + retry + again + back
        first = [
            audience.people[r.recipient_id] for r in pending if r.recipient_id in audience.people
        ][: transport.max_batch]
        if not first:
            first = list(itertools.islice(audience.people.values(), transport.max_batch))
    describe = getattr(transport, "describe_request", None)
    first_request = describe(first, message) if callable(describe) and first and to_send else None
    batches = math.ceil(to_send / transport.max_batch) if to_send else 0
    return SendReport(
        edition_id=edition_id,
        transport=lname,
        total=total,
        already_accepted=already,
        accepted_now=0,
        failed=0,
        uncertain=status.uncertain + status.in_flight if status else 0,
        requests=batches if transport.name == "sendgrid" else 0,
        first_request=first_request,
        status=status,
        to_send=to_send,
        left_out=_left_out(build),
        subscriber_problems=audience.problems,
        dry_run=True,
    )


def _signing_env(ledger_name: str) -> dict[str, str] | None:
    """Where unsubscribe tokens are signed from. Through SendGrid NEWSFLASH_SECRET is required
    (a partner must be able to leave); an outbox rehearsal without it shows sample tokens."""
    if ledger_name == "outbox" and not os.environ.get("NEWSFLASH_SECRET"):
        return None
    return dict(os.environ)


def send_test(
    config: Config,
    edition_id: str,
    to: str,
    transport: Transport | None = None,
    *,
    build: pipeline.BuiltEdition | None = None,
) -> SendReport:
    """One copy to `to`, subject marked "[TEST] ", outside the ledger (it counts for no one)."""
    try:
        address = validate_email(to, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise NewsflashError(f"--to {to!r} is not an email address ({e})") from None
    transport = transport or make_transport(config)
    build = build or pipeline.build_edition(
        config, edition_id, ledger_name=ledger_name_for(transport)
    )
    _check_build(build)
    message = message_from(
        config, build.email, test=True, environ=_signing_env(ledger_name_for(transport))
    )
    categories = tuple(dict.fromkeys((*message.categories, "test")))[:10]
    message = dataclasses.replace(message, categories=categories)
    person = Person(recipient_id(address), address, _first_name(config, address))
    result = transport.send([person], message)
    if result.outcome != "accepted":
        raise TransportError(
            f"the test copy to {address} was not confirmed ({result.outcome}): {result.reason}"
        )
    return SendReport(
        edition_id=edition_id,
        transport=ledger_name_for(transport),
        total=1,
        already_accepted=0,
        accepted_now=1,
        failed=0,
        uncertain=0,
        requests=result.requests,
        left_out=_left_out(build),
        to_send=1,
        test=True,
        message_id=result.message_id,
    )


def _first_name(config: Config, address: str) -> str:
    """A test to a partner on the list shows their own greeting; anyone else gets the fallback."""
    try:
        sl = load_subscribers(config.subscribers_path)
    except NewsflashError:
        return ""
    key = address.lower()
    return next((r.first_name for r in sl.recipients if r.email.lower() == key), "")


def status_lines(status: EditionStatus) -> Sequence[str]:
    """What to do next, in words, for `newsflash status` and the send summary."""
    lines: list[str] = []
    eid = status.edition_id
    skipped = skipped_count(status)
    failed = status.failed - skipped
    if status.manifest_hash is None:
        return [
            f"Edition {eid} has not been sent. Try `newsflash send {eid} --dry-run`, then "
            f"`newsflash send {eid} --to you@example.org` for a test copy."
        ]
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
            "but no answer came. Check SendGrid's Activity feed (category "
            f"edition-{eid}); if they did not get it, run `newsflash send {eid} "
            "--resend-uncertain` (anyone who did get it would get it twice)."
        )
    if skipped:
        lines.append(
            f"{skipped} recipient(s) left the audience after the send started and were not sent."
        )
    if not lines:
        lines.append(f"Done: all {status.accepted} recipient(s) accepted.")
    return lines


__all__ = [
    "ENV_HOST",
    "ENV_KEY",
    "SKIPPED_SUFFIX",
    "TRANSPORTS",
    "SendReport",
    "default_ledger_name",
    "default_transport_name",
    "ledger_name_for",
    "make_transport",
    "send_edition",
    "send_test",
    "skipped_count",
    "status_lines",
]
