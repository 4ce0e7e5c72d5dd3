"""Sending an edition batch by batch: freeze the audience in the ledger, send, settle, report.

The CLI (`newsflash send`) and the scheduler both call `send_edition`, each after checking the
approval (sending/approval.py); its checks are plan.py's (a sound build, an unchanged
edition), who gets it is audience.py's, and which ledger it writes is state/ledgers.py's: each
transport has its own, so an outbox or sandbox rehearsal never marks partners as reached by
SendGrid.

* **Exactly once.** Each batch is committed as in flight before its request and settled after
  the answer (state/ledger_batches.py). A TransportError means the request was definitely not
  accepted: the batch is recorded failed and the error re-raised with where the send stands. A
  batch that failed after its retries stops the run (an outage would fail the rest too); a
  timeout makes the batch uncertain and the send goes on, but two uncertain batches in a row
  stop it. KeyboardInterrupt (and SIGTERM, which the CLI turns into one) leaves the batches in
  flight so; the next run records them as uncertain. Uncertain recipients SendGrid's events
  vouch for are recorded accepted first (settle.py); the others are resent only with
  `resend_uncertain=True`, and only once their batch is old enough for events to have come.
* **Side by side.** Up to `[sendgrid] concurrency` batches are in flight together
  (flights.py), each committed before its request; this loop alone writes the ledger, one
  answer at a time as they come, so the counts and the progress stay exact. A failed batch
  (or a refusal, or `progress` raising) stops new requests; the batches in flight settle
  first, then the run stops or raises.
* **Who, with SendGrid's word.** A send through SendGrid first pulls SendGrid's suppression
  lists ([sendgrid] sync_before_send); if SendGrid can't be reached, the report says so and
  the send goes on with the local store.
* **Who, while it runs.** The partner list is re-read between batches whenever the file
  changes: a frozen recipient who left the audience is skipped (audience.py); a changed list
  that cannot be read stops the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from typing import NoReturn

from email_validator import EmailNotValidError, validate_email

from newsflash import pipeline
from newsflash.config import Config
from newsflash.errors import NewsflashError, TransportError
from newsflash.message import Message, message_from
from newsflash.personalise import Person
from newsflash.sending import plan
from newsflash.sending.approval import require_approved
from newsflash.sending.audience import Audience, first_name
from newsflash.sending.flights import Answer, Flights
from newsflash.sending.report import SKIPPED_SUFFIX, SendReport, skipped_count
from newsflash.sending.settle import held_back_note, settle_from_events, uncertain_cutoff
from newsflash.sending.suppression_sync import sync_for_send
from newsflash.state.ledger import Batch, EditionStatus, Ledger
from newsflash.state.ledgers import build_edition, open_ledger
from newsflash.subscribers import recipient_id
from newsflash.transports.base import BatchResult, Transport
from newsflash.transports.factory import make_transport

__all__ = ["MAX_UNCERTAIN_IN_A_ROW", "SKIPPED_SUFFIX", "Progress", "send_edition", "send_test"]

MAX_UNCERTAIN_IN_A_ROW = 2

Progress = Callable[[int, int], None]
"""progress(done, to_send): recipients settled in this run so far, of those it will send."""


def send_edition(
    config: Config,
    edition_id: str,
    *,
    transport: Transport | None = None,
    resend_uncertain: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    build: pipeline.BuiltEdition | None = None,
    ready: plan.Prepared | None = None,
) -> SendReport:
    """Send the edition to every audience member not yet reached (see the module docstring).

    `progress(done, to_send)` is called after each batch has been recorded in the ledger; it
    may raise (e.g. the scheduler stopping) to end the run there, leaving nothing in flight.
    A dry run sends and writes nothing: it reports what a send would do. A real one refuses
    an edition the reviewers have not approved as it builds now (NotApproved, when config.toml
    requires approval), here rather than in each caller, so no way of sending can forget it.
    `ready`: what `plan.prepare` gave the dry run shown before this send, so the partner list
    is read and checked once per `newsflash send` (the send re-reads it only if it changed).
    """
    transport = transport or make_transport(config, dry_run=dry_run)
    synced = ""
    if not dry_run:
        build = build or (ready.build if ready else None)
        build = build or build_edition(config, edition_id, ledger_name=transport.ledger_name)
        require_approved(config, edition_id, build)
        synced = sync_for_send(config, transport.ledger_name)
    owned = ready is None  # else the caller's: it may use it again
    ready = ready or plan.prepare(config, edition_id, transport, build)
    try:
        args = (resend_uncertain, dry_run, progress, synced)
        return _send_prepared(config, edition_id, transport, ready, *args)
    finally:
        if owned:  # a long-lived scheduler should not wait for the collector
            ready.audience.close()


def _send_prepared(
    config: Config,
    edition_id: str,
    transport: Transport,
    ready: plan.Prepared,
    resend_uncertain: bool,
    dry_run: bool,
    progress: Progress | None,
    synced: str,
) -> SendReport:
    if dry_run:
        return plan.dry_run(config, edition_id, transport, ready, resend_uncertain)
    with open_ledger(config, ready.ledger_name) as ledger, ledger.sending(edition_id):
        settled = settle_from_events(config, ledger, ready.ledger_name, edition_id)
        run = _Run(ledger, transport, ready, edition_id, progress, _workers(config, transport))
        start = run.start(uncertain_cutoff(config) if resend_uncertain else None)
        held = held_back_note(config, ledger, edition_id) if resend_uncertain else ""
        run.loop()
        ledger.finish(edition_id)
        final = ledger.status(edition_id)
    report = run.report(start, final)
    return dataclasses.replace(report, settled=settled, held_back=held, synced=synced)


class _Run:
    """One run of a send, holding the edition's send lock: the batch loop and its counts."""

    def __init__(
        self,
        ledger: Ledger,
        transport: Transport,
        ready: plan.Prepared,
        edition_id: str,
        progress: Progress | None,
        workers: int = 1,
    ) -> None:
        self.ledger = ledger
        self.transport = transport
        self.ready = ready
        self.audience = ready.audience
        self.edition_id = edition_id
        self.progress = progress
        self.to_send = self.done = self.accepted_now = self.requests = 0
        self.uncertain_in_a_row = 0
        self.stopped = ""
        self.ahead: _Lookahead | None = None
        self.workers = workers

    def start(self, resend_before: str | None) -> EditionStatus:
        """Freeze the audience on the first run, or resume (skipping who left since);
        `resend_before`: resend the uncertain batches that went out by then (None: none)."""
        ledger, edition_id, build = self.ledger, self.edition_id, self.ready.build
        self.audience.reload_if_changed()  # edited while the preview waited for a yes
        begun = ledger.status(edition_id)
        resuming = begun.manifest_hash is not None
        plan.refuse_if_changed(edition_id, ledger.manifest(edition_id), begun, build)
        start = ledger.start_send(
            edition_id,
            plan.same_edition(begun.manifest_hash, build) or build.edition.manifest_hash,
            json.dumps(build.edition.manifest, sort_keys=True),
            self.audience.members(),  # streamed in
            resend_uncertain=resend_before is not None,
            uncertain_before=resend_before,
        )
        if resuming:
            self.audience.skip_gone(ledger, edition_id)
        self.to_send = ledger.status(edition_id).pending
        if self.workers == 1:  # side by side, each batch's thread builds its own payload
            self.ahead = _Lookahead(self.transport, ledger, edition_id)
        return start

    def loop(self) -> None:
        """Keep up to `workers` batches in flight until none is left or a reason to stop
        comes up; then let the ones in flight settle before returning (or raising)."""
        flights = Flights(self.transport, self.ready.message)
        try:
            while True:
                while not self.stopped and len(flights) < self.workers:
                    claimed = self._claim()
                    if claimed is None:
                        break
                    flights.launch(*claimed)
                if not flights:
                    return
                self._settle(flights.next_answer())
        except _Refused as refused:
            self._let_settle(flights)
            raise self._not_sent(refused.error, refused.size) from refused.error
        except (KeyboardInterrupt, SystemExit):
            raise  # Ctrl-C, SIGTERM: stop now; batches in flight stay so (uncertain next run)
        except BaseException:
            self._let_settle(flights)  # e.g. progress() raised: nothing is left in flight
            raise
        finally:
            flights.close()

    def _not_sent(self, error: TransportError, size: int) -> TransportError:
        """The refusal, with where the send stands once the other batches have settled."""
        st = self.ledger.status(self.edition_id)
        return TransportError(
            f"{error}\nThe batch of {size} recipient(s) was recorded as not sent; "
            f"{st.accepted} of {st.total} have edition {self.edition_id}. Fix the cause and "
            f"run `newsflash send {self.edition_id}` again: it resumes where it stopped.",
            status=error.status,
            body=error.body,
        )

    def _claim(self) -> tuple[Batch, list[Person]] | None:
        """The next batch, committed as in flight, with whom it goes to; None to stop."""
        if self.audience.reload_if_changed():
            self.to_send -= self.audience.skip_gone(self.ledger, self.edition_id)
        if self.audience.unreadable:
            self.stopped = _unreadable_list(self.edition_id, self.audience.unreadable)
            return None
        batch = self.ledger.next_batch(self.edition_id, self.transport.max_batch)
        if batch is None:
            return None
        found = self.audience.people(batch.recipients)
        people = [
            p or Person(r.recipient_id, r.email)
            for p, r in zip(found, batch.recipients, strict=True)
        ]
        if self.ahead is not None:
            self.ahead.hint(self.audience, self.ready.message)
        return batch, people

    def _settle(self, answer: Answer) -> None:
        """Record one batch's answer; an error stops new requests (the caller lets the
        others settle, then it is raised)."""
        if answer.error is not None:
            self._settle_error(answer, answer.error)
        assert answer.result is not None
        result = answer.result
        self.requests += result.requests
        self.done += len(answer.people)
        stopped, self.uncertain_in_a_row = _record(
            self.ledger, answer.batch.id, result, self.uncertain_in_a_row
        )
        self.stopped = self.stopped or stopped
        if result.outcome == "accepted":
            self.accepted_now += len(answer.people)
        if self.progress is not None:
            self.progress(self.done, max(self.to_send, self.done))

    def _settle_error(self, answer: Answer, error: BaseException) -> NoReturn:
        """What an exception from the transport means for its batch goes in the ledger."""
        batch = answer.batch
        if isinstance(error, TransportError):
            self.ledger.mark_failed(batch.id, _first_line(str(error)))
            raise _Refused(error, len(answer.people))
        if isinstance(error, KeyboardInterrupt | SystemExit) and not answer.outstanding:
            # Stopped in a backoff or rate-limit wait: nothing left, nothing to doubt.
            self.ledger.mark_failed(batch.id, "interrupted before the request left (not sent)")
        raise error  # anything else leaves the batch in flight: uncertain on the next run

    def _let_settle(self, flights: Flights) -> None:
        """After an error: no new request; record what the batches still in flight come back
        with. A Ctrl-C meanwhile leaves the rest in flight (uncertain on the next run)."""
        self.progress = None  # it may be what raised
        while flights:
            answer = flights.next_answer()
            # The first error is the one raised; this batch is recorded as its answer says.
            with contextlib.suppress(BaseException):
                self._settle(answer)

    def report(self, start: EditionStatus, final: EditionStatus) -> SendReport:
        skipped = skipped_count(final)
        return SendReport(
            edition_id=self.edition_id,
            transport=self.ready.ledger_name,
            total=final.total,
            already_accepted=start.accepted,
            accepted_now=self.accepted_now,
            failed=final.failed - skipped,
            uncertain=final.uncertain + final.in_flight,
            requests=self.requests,
            status=final,
            skipped=skipped,
            to_send=self.to_send,
            left_out=plan.left_out(self.ready.build),
            subscriber_problems=self.audience.problems,
            stopped=self.stopped,
        )


class _Lookahead:
    """Tells the transport which batch will most likely come next (`Transport.prepare`).

    Pending recipients are handed out in ledger order, so the next batch is the next pending
    slice, asked of the ledger after each claim; a wrong guess (someone skipped meanwhile)
    only costs a rebuild, never a wrong request: the transport checks the batch it is given.
    """

    def __init__(self, transport: Transport, ledger: Ledger, edition_id: str) -> None:
        self.transport = transport
        self.ledger = ledger
        self.edition_id = edition_id
        self.size = transport.max_batch

    def hint(self, audience: Audience, message: Message) -> None:
        people = audience.people(self.ledger.upcoming(self.edition_id, self.size))
        upcoming = [p for p in people if p is not None]
        if upcoming:
            self.transport.prepare(upcoming, message)


class _Refused(Exception):
    """A batch the transport refused (TransportError), recorded failed: raised once the
    batches still in flight have settled."""

    def __init__(self, error: TransportError, size: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.size = size


def _workers(config: Config, transport: Transport) -> int:
    """Batches in flight together: [sendgrid] concurrency for SendGrid; the outbox writes
    files one batch at a time (there is no answer to wait for)."""
    return config.model.sendgrid.concurrency if transport.name == "sendgrid" else 1


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
    build = build or build_edition(config, edition_id, ledger_name=transport.ledger_name)
    plan.check_build(build)
    message = message_from(
        config, build.email, test=True, environ=plan.signing_env(transport.ledger_name)
    )
    categories = tuple(dict.fromkeys((*message.categories, "test")))[:10]
    message = dataclasses.replace(message, categories=categories)
    person = Person(recipient_id(address), address, first_name(config, address))
    result = transport.send([person], message)
    if result.outcome != "accepted":
        raise TransportError(
            f"the test copy to {address} was not confirmed ({result.outcome}): {result.reason}"
        )
    return SendReport(
        edition_id=edition_id,
        transport=transport.ledger_name,
        total=1,
        already_accepted=0,
        accepted_now=1,
        failed=0,
        uncertain=0,
        requests=result.requests,
        left_out=plan.left_out(build),
        to_send=1,
        test=True,
        message_id=result.message_id,
    )
