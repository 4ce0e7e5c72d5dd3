"""The ledger is the only thing between a crash and a partner getting the newsletter twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from newsflash.errors import LedgerError, SendInProgress
from newsflash.state.ledger import Ledger, LedgerRecipient
from newsflash.subscribers import recipient_id

REPO = Path(__file__).resolve().parents[1]
ED = "2022-02"
HASH = "a" * 64
MANIFEST = json.dumps({"items": [{"path": "items/2022-02/launch.md", "sha256": "0" * 64}]})


def people(n: int, prefix: str = "p") -> list[LedgerRecipient]:
    return [LedgerRecipient(f"{prefix}{i}", f"{prefix}{i}@example.org") for i in range(n)]


def emails(batch_recipients: tuple[LedgerRecipient, ...]) -> list[str]:
    return [r.email for r in batch_recipients]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite"


@pytest.fixture
def ledger(db: Path) -> Iterator[Ledger]:
    with Ledger(db) as led:
        yield led


def start(led: Ledger, recipients: list[LedgerRecipient], **kw: bool) -> None:
    led.start_send(ED, HASH, MANIFEST, recipients, **kw)


# -- a real second process ----------------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from newsflash.state.ledger import Ledger
    led = Ledger(Path(sys.argv[1]))
    with led.sending(sys.argv[2]):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


@pytest.fixture
def lock_holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    proc = spawn(_HOLDER, str(db), ED)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "locked", proc.stderr.read() if proc.stderr else line
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# -- freezing and batching ----------------------------------------------------------------------


def test_frozen_recipients_are_pending(ledger: Ledger) -> None:
    with ledger.sending(ED):
        status = ledger.start_send(ED, HASH, MANIFEST, people(5))
    assert (status.pending, status.total, status.accepted) == (5, 5, 0)
    assert status.manifest_hash == HASH
    assert status.started_at is not None and status.started_at.endswith("+00:00")
    assert status.finished_at is None
    assert not status.complete


def test_next_batch_respects_size_and_order(ledger: Ledger) -> None:
    recipients = people(7)
    with ledger.sending(ED):
        start(ledger, recipients)
        sizes = []
        seen: list[LedgerRecipient] = []
        while (batch := ledger.next_batch(ED, 3)) is not None:
            assert batch.edition_id == ED
            sizes.append(len(batch.recipients))
            seen.extend(batch.recipients)
            ledger.mark_accepted(batch.id, f"msg-{batch.id}")
    assert sizes == [3, 3, 1]
    assert seen == recipients


def test_next_batch_is_committed_before_it_returns(ledger: Ledger, db: Path) -> None:
    with ledger.sending(ED):
        start(ledger, people(4))
        batch = ledger.next_batch(ED, 2)
        assert batch is not None
        # Another connection sees it at once: a crash now can't lose the "in flight" mark.
        with Ledger(db) as other:
            assert other.status(ED).in_flight == 2


def test_next_batch_on_an_edition_never_started_is_none(ledger: Ledger) -> None:
    with ledger.sending(ED):
        assert ledger.next_batch(ED, 10) is None


def test_accepted_recipients_never_come_back(db: Path) -> None:
    recipients = people(5)
    with Ledger(db) as led, led.sending(ED):
        start(led, recipients)
        batch = led.next_batch(ED, 2)
        assert batch is not None
        led.mark_accepted(batch.id, "sg-1")
    for resend in (False, True):
        with Ledger(db) as led, led.sending(ED):
            start(led, recipients, resend_uncertain=resend)
            rest = led.next_batch(ED, 100)
            assert rest is not None
            assert not set(rest.recipients) & set(batch.recipients)
            led.mark_failed(rest.id, "HTTP 400")
    with Ledger(db) as led:
        assert led.status(ED).accepted == 2


def test_in_flight_at_restart_becomes_uncertain_and_is_not_rebatched(db: Path) -> None:
    recipients = people(4)
    with Ledger(db) as led, led.sending(ED):
        start(led, recipients)
        lost = led.next_batch(ED, 2)
        assert lost is not None
        # the process "dies" here: no answer is ever recorded
    with Ledger(db) as led, led.sending(ED):
        status = led.start_send(ED, HASH, MANIFEST, recipients)
        assert (status.uncertain, status.in_flight, status.pending) == (2, 0, 2)
        assert status.uncertain_recipients == tuple(emails(lost.recipients))
        rest = led.next_batch(ED, 100)
        assert rest is not None
        assert emails(rest.recipients) == ["p2@example.org", "p3@example.org"]
        led.mark_accepted(rest.id, "sg-2")
        assert led.next_batch(ED, 100) is None
    # Still not resent on a plain rerun: a duplicate is the user's call.
    with Ledger(db) as led, led.sending(ED):
        assert led.start_send(ED, HASH, MANIFEST, recipients).uncertain == 2
        assert led.next_batch(ED, 100) is None


def test_uncertain_recipients_are_resent_only_with_resend_uncertain(db: Path) -> None:
    recipients = people(3)
    with Ledger(db) as led, led.sending(ED):
        start(led, recipients)
        batch = led.next_batch(ED, 2)
        assert batch is not None
        led.mark_uncertain(batch.id, "read timeout")
        assert led.status(ED).uncertain_recipients == tuple(emails(batch.recipients))
    with Ledger(db) as led, led.sending(ED):
        status = led.start_send(ED, HASH, MANIFEST, recipients, resend_uncertain=True)
        assert (status.uncertain, status.pending) == (0, 3)
        again = led.next_batch(ED, 100)
        assert again is not None
        assert emails(again.recipients) == [r.email for r in recipients]


def test_in_flight_left_by_a_sigkilled_process_becomes_uncertain(db: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from newsflash.state.ledger import Ledger, LedgerRecipient
        led = Ledger(Path(sys.argv[1]))
        people = [LedgerRecipient(f"p{i}", f"p{i}@example.org") for i in range(5)]
        with led.sending(sys.argv[2]):
            led.start_send(sys.argv[2], sys.argv[3], "{}", people)
            led.next_batch(sys.argv[2], 3)
            os.kill(os.getpid(), signal.SIGKILL)  # between "in flight" and the answer
        """
    )
    proc = spawn(script, str(db), ED, HASH)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    with Ledger(db) as led, led.sending(ED):
        status = led.start_send(ED, HASH, "{}", people(5))
        assert (status.uncertain, status.pending, status.in_flight) == (3, 2, 0)
        rest = led.next_batch(ED, 10)
        assert rest is not None
        assert [r.recipient_id for r in rest.recipients] == ["p3", "p4"]


def test_failed_recipients_are_retried_next_run(db: Path) -> None:
    recipients = people(4)
    with Ledger(db) as led, led.sending(ED):
        start(led, recipients)
        first = led.next_batch(ED, 2)
        second = led.next_batch(ED, 2)
        assert first is not None and second is not None
        led.mark_failed(first.id, "HTTP 400: invalid email")
        led.mark_accepted(second.id, "sg-2")
        assert led.next_batch(ED, 10) is None  # not within the same run
        led.finish(ED)
        assert led.status(ED).finished_at is not None
    with Ledger(db) as led, led.sending(ED):
        status = led.start_send(ED, HASH, MANIFEST, recipients)
        assert (status.failed, status.pending, status.accepted) == (0, 2, 2)
        assert status.finished_at is None  # there is work again
        retry = led.next_batch(ED, 10)
        assert retry is not None
        assert retry.recipients == first.recipients
        led.mark_accepted(retry.id, "sg-3")
        led.finish(ED)
        assert led.status(ED).complete


def test_recipients_added_after_the_send_started_are_not_added(db: Path) -> None:
    with Ledger(db) as led, led.sending(ED):
        start(led, people(2))
    with Ledger(db) as led, led.sending(ED):
        status = led.start_send(ED, HASH, MANIFEST, [*people(2), *people(3, prefix="new")])
        assert status.total == 2


def test_duplicate_recipients_refused(ledger: Ledger) -> None:
    twice_by_id = [LedgerRecipient("a", "a@example.org"), LedgerRecipient("a", "b@example.org")]
    twice_by_email = [LedgerRecipient("a", "x@example.org"), LedgerRecipient("b", "X@example.org")]
    with ledger.sending(ED):
        with pytest.raises(LedgerError, match="duplicate recipient ids: a"):
            start(ledger, twice_by_id)
        with pytest.raises(LedgerError, match="duplicate emails"):
            start(ledger, twice_by_email)
    assert ledger.status(ED).manifest_hash is None  # nothing half-frozen


def _as_a_send_names(*emails: str) -> list[LedgerRecipient]:
    """Recipients with the ids a send gives them: recipient_id of the address."""
    return [LedgerRecipient(recipient_id(e), e) for e in emails]


def test_a_send_s_ids_still_refuse_one_address_twice_whatever_its_case(ledger: Ledger) -> None:
    # Ids derived from their folded address skip the grouped address query: the primary key
    # must then be what refuses the repeat.
    twice = _as_a_send_names("a@example.org", "p@example.org", "P@Example.ORG")
    with ledger.sending(ED), pytest.raises(LedgerError, match="duplicate recipient ids"):
        start(ledger, twice)
    assert ledger.status(ED).manifest_hash is None


def test_one_id_not_derived_from_its_address_brings_back_the_address_check(
    ledger: Ledger,
) -> None:
    # " p@example.org" hashes to another id than "p@example.org" but folds to the same
    # address: the ids differ, so only the address query can see the double send.
    late = [*_as_a_send_names(*(f"q{i}@example.org" for i in range(50)), "p@example.org")]
    late.append(LedgerRecipient(recipient_id(" P@example.org"), " P@example.org"))
    with ledger.sending(ED), pytest.raises(LedgerError, match=r"duplicate emails: p@example\.org"):
        start(ledger, late)
    assert ledger.status(ED).manifest_hash is None
    with ledger.sending(ED):
        start(ledger, late[:-1])
    assert ledger.status(ED).total == 51


def test_a_recipient_made_of_its_address_has_the_send_s_id_and_is_trusted_only_unpadded() -> None:
    plain = LedgerRecipient.of_address("P@Example.org", "ACME")
    assert plain == LedgerRecipient(recipient_id("P@Example.org"), "P@Example.org")
    assert plain.organisation == "ACME" and plain.derived
    assert not LedgerRecipient.of_address(" p@example.org").derived
    assert not LedgerRecipient(recipient_id("p@example.org"), "p@example.org").derived


def test_a_padded_address_made_by_the_send_still_brings_back_the_address_check(
    ledger: Ledger,
) -> None:
    # The freeze trusts of_address's ids without hashing them again, but one padded address
    # hashes apart from its folded form, so the grouped address query must still run.
    late = [LedgerRecipient.of_address(f"q{i}@example.org") for i in range(50)]
    late += [
        LedgerRecipient.of_address("p@example.org"),
        LedgerRecipient.of_address(" P@example.org"),
    ]
    with ledger.sending(ED), pytest.raises(LedgerError, match=r"duplicate emails: p@example\.org"):
        start(ledger, late)
    assert ledger.status(ED).manifest_hash is None


def test_the_freeze_hashes_no_address_the_send_made_its_id_from(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsflash.state import ledger_batches

    hashed: list[str] = []

    def counted(email: str) -> str:
        hashed.append(email)
        return recipient_id(email)

    monkeypatch.setattr(ledger_batches, "recipient_id", counted)
    with ledger.sending(ED):
        start(ledger, [LedgerRecipient.of_address(f"s{i}@example.org") for i in range(40)])
    assert hashed == []
    assert ledger.status(ED).total == 40
    with ledger.sending("2022-03"):
        ledger.start_send(
            "2022-03", HASH, MANIFEST, _as_a_send_names("a@example.org", "b@example.org")
        )
    assert hashed == ["a@example.org", "b@example.org"]


def test_recipients_stream_into_the_freeze_from_a_one_pass_iterator(ledger: Ledger) -> None:
    # A send hands the freeze a generator, so it never holds a list of every recipient.
    with ledger.sending(ED):
        ledger.start_send(ED, HASH, MANIFEST, iter(people(2500)))
        assert ledger.status(ED).total == 2500
        assert ledger.upcoming(ED, 3) == people(3)
        first = ledger.next_batch(ED, 1000)
        assert first is not None and list(first.recipients) == people(1000)
        assert ledger.upcoming(ED, 2) == people(1002)[1000:]


def test_a_duplicate_late_in_a_streamed_freeze_leaves_nothing_frozen(ledger: Ledger) -> None:
    twice = iter([*people(3000), LedgerRecipient("other", "P7@Example.org")])
    with ledger.sending(ED):
        with pytest.raises(LedgerError, match=r"duplicate emails: p7@example\.org"):
            ledger.start_send(ED, HASH, MANIFEST, twice)
        again = iter([*people(3000), people(8)[7]])
        with pytest.raises(LedgerError, match="duplicate recipient ids: p7;"):
            ledger.start_send(ED, HASH, MANIFEST, again)
    assert ledger.status(ED).manifest_hash is None
    assert ledger.status(ED).total == 0


def test_upcoming_is_the_batch_next_batch_claims_and_empty_when_none_is_left(
    ledger: Ledger,
) -> None:
    with ledger.sending(ED):
        start(ledger, people(5))
        assert ledger.upcoming(ED, 10) == people(5)
        assert ledger.next_batch(ED, 10) is not None
        assert ledger.upcoming(ED, 10) == []


def test_every_way_out_of_the_ledger_gives_recipients_exactly_as_frozen_in_list_order(
    ledger: Ledger,
) -> None:
    # Read back as one row of JSON (no GIL wait per row): quotes, backslashes, commas and
    # non-ASCII must come back as they went in, in list order, whatever the ids sort as.
    odd = ['"a,b"@example.org', "back\\slash@example.org", "zoë@exämple.org", "x@[127.0.0.1]"]
    frozen = [LedgerRecipient(f"{9999 - i:04d}", f"n{i}@example.org") for i in range(2_500)]
    frozen[1:5] = [LedgerRecipient(f"odd{i}", e) for i, e in enumerate(odd)]
    with ledger.sending(ED):
        start(ledger, frozen)
        assert ledger.pending_recipients(ED) == frozen
        assert ledger.upcoming(ED, 1_000) == frozen[:1_000]
        first = ledger.next_batch(ED, 1_000)
        assert first is not None and list(first.recipients) == frozen[:1_000]
        ledger.mark_failed(first.id, "refused")
        assert ledger.resume_order(ED, resend_uncertain=False) == frozen


def test_changed_manifest_hash_refused(db: Path) -> None:
    with Ledger(db) as led, led.sending(ED):
        start(led, people(2))
    new_hash = "b" * 64
    with Ledger(db) as led, led.sending(ED), pytest.raises(LedgerError) as refused:
        led.start_send(ED, new_hash, MANIFEST, people(2))
    message = str(refused.value)
    assert HASH in message and new_hash in message
    assert "changed after sending started" in message
    assert "new edition" in message and "reset" in message  # nothing accepted yet


def test_changed_manifest_hash_of_a_sent_edition_does_not_offer_reset(db: Path) -> None:
    with Ledger(db) as led, led.sending(ED):
        start(led, people(2))
        batch = led.next_batch(ED, 1)
        assert batch is not None
        led.mark_accepted(batch.id, "sg")
        with pytest.raises(LedgerError) as refused:
            led.start_send(ED, "b" * 64, MANIFEST, people(2))
    assert "new edition" in str(refused.value) and "reset" not in str(refused.value)


def test_start_send_and_next_batch_need_the_send_lock(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="sending"):
        start(ledger, people(1))
    with pytest.raises(LedgerError, match="sending"):
        ledger.next_batch(ED, 1)


def test_marking_a_settled_batch_refused(ledger: Ledger) -> None:
    with ledger.sending(ED):
        start(ledger, people(2))
        batch = ledger.next_batch(ED, 2)
        assert batch is not None
        ledger.mark_accepted(batch.id, "sg-1")
        with pytest.raises(LedgerError, match="already accepted"):
            ledger.mark_failed(batch.id, "HTTP 400")
        with pytest.raises(LedgerError, match="already accepted"):
            ledger.mark_uncertain(batch.id, "timeout")
        with pytest.raises(LedgerError, match="not in the ledger"):
            ledger.mark_accepted(batch.id + 1000, "sg-2")


# -- the send lock ------------------------------------------------------------------------------


def test_second_sending_refused_from_another_process(
    db: Path, lock_holder: subprocess.Popen[str]
) -> None:
    with Ledger(db) as led, pytest.raises(LedgerError) as refused, led.sending(ED):
        pytest.fail("got a lock another process holds")
    message = str(refused.value)
    assert "another send of edition 2022-02 is running" in message
    assert f"pid {lock_holder.pid}" in message
    assert "newsflash status 2022-02" in message


def test_second_sending_refused_in_the_same_process_with_a_second_ledger(db: Path) -> None:
    with Ledger(db) as first, Ledger(db) as second, first.sending(ED):
        with pytest.raises(LedgerError, match=f"pid {os.getpid()}"), second.sending(ED):
            pytest.fail("two holders in one process")
        with pytest.raises(LedgerError), first.sending(ED):
            pytest.fail("nested lock on one ledger")
    with Ledger(db) as again, again.sending(ED):  # released on exit
        pass


def test_other_editions_are_not_blocked(db: Path, lock_holder: subprocess.Popen[str]) -> None:
    with Ledger(db) as led, led.sending("2022-03"):
        pass


def test_lock_released_when_the_holding_process_is_sigkilled(
    db: Path, lock_holder: subprocess.Popen[str]
) -> None:
    lock_holder.send_signal(signal.SIGKILL)
    lock_holder.wait(timeout=10)
    with Ledger(db) as led, led.sending(ED):
        pass
    assert (db.parent / "locks" / f"{ED}.lock").exists()


def test_edition_ids_that_could_escape_the_lock_directory_refused(ledger: Ledger) -> None:
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(LedgerError, match="edition id"), ledger.sending(bad):
            pass


# -- what the rest of newsflash reads -----------------------------------------------------------


def test_status_counts_and_lists(ledger: Ledger) -> None:
    recipients = people(10)
    with ledger.sending(ED):
        start(ledger, recipients)
        accepted = ledger.next_batch(ED, 3)
        failed = ledger.next_batch(ED, 2)
        uncertain = ledger.next_batch(ED, 2)
        in_flight = ledger.next_batch(ED, 1)
        assert accepted and failed and uncertain and in_flight
        ledger.mark_accepted(accepted.id, "sg-1")
        ledger.mark_failed(failed.id, "HTTP 400: bad address")
        ledger.mark_uncertain(uncertain.id, "timeout")
        status = ledger.status(ED)
    assert (status.accepted, status.failed, status.uncertain) == (3, 2, 2)
    assert (status.in_flight, status.pending, status.total) == (1, 2, 10)
    assert status.uncertain_recipients == ("p5@example.org", "p6@example.org")
    assert status.failed_recipients == (
        ("p3@example.org", "HTTP 400: bad address"),
        ("p4@example.org", "HTTP 400: bad address"),
    )
    assert not status.complete
    assert [s.edition_id for s in ledger.editions()] == [ED]


def test_status_of_an_edition_never_started_is_all_zero(ledger: Ledger) -> None:
    status = ledger.status("2030-01")
    assert status.manifest_hash is None and status.started_at is None
    counts = (status.pending, status.in_flight, status.accepted, status.failed, status.uncertain)
    assert counts == (0, 0, 0, 0, 0)
    assert status.total == 0 and not status.complete
    assert ledger.editions() == []


def test_finish_only_when_nothing_pending_or_in_flight(ledger: Ledger) -> None:
    with ledger.sending(ED):
        start(ledger, people(2))
        batch = ledger.next_batch(ED, 1)
        assert batch is not None
        ledger.finish(ED)
        assert ledger.status(ED).finished_at is None
        ledger.mark_uncertain(batch.id, "timeout")
        last = ledger.next_batch(ED, 1)
        assert last is not None
        ledger.mark_accepted(last.id, "sg")
        ledger.finish(ED)
        assert ledger.status(ED).finished_at is not None


def test_published_item_keys_only_from_editions_with_accepted_recipients(ledger: Ledger) -> None:
    def manifest(*paths: str) -> str:
        return json.dumps({"items": [{"path": p, "sha256": "0" * 64} for p in paths]})

    plan = {
        "2022-01": (manifest("items/a.md", "items/b.md"), "accept"),
        "2022-02": (manifest("items/c.md"), "fail"),
        "2022-03": (manifest("items/d.md"), "uncertain"),
        "2022-04": (manifest("items/e.md"), "nothing"),
        "2022-05": (manifest("items/b.md", "items/f.md"), "accept"),
    }
    for edition, (manifest_json, outcome) in plan.items():
        with ledger.sending(edition):
            ledger.start_send(edition, edition, manifest_json, people(1))
            if outcome == "nothing":
                continue
            batch = ledger.next_batch(edition, 1)
            assert batch is not None
            if outcome == "accept":
                ledger.mark_accepted(batch.id, "sg")
            elif outcome == "fail":
                ledger.mark_failed(batch.id, "HTTP 400")
            else:
                ledger.mark_uncertain(batch.id, "timeout")
    assert ledger.published_item_keys() == {"items/a.md", "items/b.md", "items/f.md"}
    assert ledger.published_item_keys(exclude_edition="2022-05") == {"items/a.md", "items/b.md"}
    assert ledger.is_sent("2022-01") and not ledger.is_sent("2022-03")
    assert not ledger.is_sent("1999-01")


def test_approval_record_and_get(ledger: Ledger) -> None:
    assert ledger.approval(ED) is None
    ledger.record_approval(ED, HASH, "ana")
    approved_hash, approved_at, approved_by = ledger.approval(ED) or ("", "", "")
    assert (approved_hash, approved_by) == (HASH, "ana")
    assert approved_at.endswith("+00:00")
    ledger.record_approval(ED, "b" * 64, "ben")
    assert (ledger.approval(ED) or ("",))[0] == "b" * 64
    assert ledger.status(ED).approval_hash == "b" * 64
    assert [s.edition_id for s in ledger.editions()] == [ED]  # approved, not yet sent


def test_reset_allowed_while_nobody_can_have_it(db: Path) -> None:
    with Ledger(db) as led:
        with led.sending(ED):
            start(led, people(3))
            batch = led.next_batch(ED, 2)
            assert batch is not None
            led.mark_failed(batch.id, "HTTP 400")
        led.reset(ED)
        assert led.status(ED).total == 0
        with led.sending(ED):  # a changed edition may now start afresh under the same id
            assert led.start_send(ED, "b" * 64, MANIFEST, people(1)).total == 1
            led.reset(ED)  # also from inside the lock


@pytest.mark.parametrize("outcome", ["accepted", "in_flight", "uncertain"])
def test_reset_refused_once_someone_may_have_it(ledger: Ledger, outcome: str) -> None:
    with ledger.sending(ED):
        start(ledger, people(2))
        batch = ledger.next_batch(ED, 1)
        assert batch is not None
        if outcome == "accepted":
            ledger.mark_accepted(batch.id, "sg")
        elif outcome == "uncertain":
            ledger.mark_uncertain(batch.id, "timeout")
    with pytest.raises(LedgerError, match="can't be reset"):
        ledger.reset(ED)
    assert ledger.status(ED).total == 2


def test_reset_refused_while_another_process_sends(
    ledger: Ledger, lock_holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(SendInProgress, match="another send"):
        ledger.reset(ED)


# -- any interleaving ---------------------------------------------------------------------------

N_RECIPIENTS = 12


class LedgerMachine(RuleBasedStateMachine):
    """Sends, answers, crashes and restarts in any order against a plain model of who is where."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-machine-"))
        self.db = self.dir / "ledger.sqlite"
        self.recipients = people(N_RECIPIENTS)
        self.model = {r.recipient_id: "pending" for r in self.recipients}
        self.batches: dict[int, tuple[str, ...]] = {}  # markable in this "process"
        self.ever_accepted: set[str] = set()
        self.stack = ExitStack()
        self._open(resend_uncertain=False)

    def _open(self, resend_uncertain: bool) -> None:
        self.ledger = Ledger(self.db)
        self.stack.enter_context(self.ledger.sending(ED))
        self.ledger.start_send(
            ED, HASH, MANIFEST, self.recipients, resend_uncertain=resend_uncertain
        )

    def teardown(self) -> None:
        self.stack.close()
        self.ledger.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(size=st.integers(min_value=1, max_value=5))
    def take(self, size: int) -> None:
        pending = [rid for rid, state in self.model.items() if state == "pending"]
        batch = self.ledger.next_batch(ED, size)
        if batch is None:
            assert pending == []
            return
        ids = tuple(r.recipient_id for r in batch.recipients)
        assert ids == tuple(pending[:size])
        assert not set(ids) & self.ever_accepted
        for rid in ids:
            self.model[rid] = "in_flight"
        self.batches[batch.id] = ids

    def _markable(self, *states: str) -> list[int]:
        return sorted(b for b, ids in self.batches.items() if self.model[ids[0]] in states)

    @precondition(lambda self: self._markable("in_flight", "uncertain"))
    @rule(data=st.data(), accepted=st.booleans())
    def answer(self, data: st.DataObject, accepted: bool) -> None:
        batch_id = data.draw(st.sampled_from(self._markable("in_flight", "uncertain")))
        if accepted:
            self.ledger.mark_accepted(batch_id, f"sg-{batch_id}")
        else:
            self.ledger.mark_failed(batch_id, "HTTP 400")
        for rid in self.batches[batch_id]:
            self.model[rid] = "accepted" if accepted else "failed"
            if accepted:
                self.ever_accepted.add(rid)

    @precondition(lambda self: self._markable("in_flight"))
    @rule(data=st.data())
    def time_out(self, data: st.DataObject) -> None:
        batch_id = data.draw(st.sampled_from(self._markable("in_flight")))
        self.ledger.mark_uncertain(batch_id, "read timeout")
        for rid in self.batches[batch_id]:
            self.model[rid] = "uncertain"

    @precondition(lambda self: self._markable("accepted", "failed"))
    @rule(data=st.data(), mark=st.sampled_from(["accepted", "failed", "uncertain"]))
    def late_answer_for_a_settled_batch(self, data: st.DataObject, mark: str) -> None:
        batch_id = data.draw(st.sampled_from(self._markable("accepted", "failed")))
        with pytest.raises(LedgerError, match="already"):
            if mark == "accepted":
                self.ledger.mark_accepted(batch_id, "sg-late")
            elif mark == "failed":
                self.ledger.mark_failed(batch_id, "late")
            else:
                self.ledger.mark_uncertain(batch_id, "late")

    @rule(resend_uncertain=st.booleans())
    def crash_and_restart(self, resend_uncertain: bool) -> None:
        self.stack.close()  # in-flight batches stay in flight, as after a SIGKILL
        self.ledger.close()
        self.batches = {}
        retry = {"failed", "uncertain"} if resend_uncertain else {"failed"}
        for rid, state in self.model.items():
            if state == "in_flight":
                state = "uncertain"
            self.model[rid] = "pending" if state in retry else state
        self._open(resend_uncertain)

    @invariant()
    def every_recipient_is_in_exactly_the_modelled_state(self) -> None:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT r.recipient_id, COALESCE(b.state, 'pending') FROM recipients r "
                "LEFT JOIN batches b ON b.id = r.batch_id"
            ).fetchall()
        conn.close()
        assert dict(rows) == self.model
        assert len(rows) == N_RECIPIENTS
        assert self.ever_accepted == {rid for rid, s in self.model.items() if s == "accepted"}

    @invariant()
    def status_agrees_with_the_model(self) -> None:
        status = self.ledger.status(ED)
        states = list(self.model.values())
        assert status.pending == states.count("pending")
        assert status.in_flight == states.count("in_flight")
        assert status.accepted == states.count("accepted")
        assert status.failed == states.count("failed")
        assert status.uncertain == states.count("uncertain")
        assert status.total == N_RECIPIENTS
        assert status.uncertain_recipients == tuple(
            f"{rid}@example.org" for rid, s in self.model.items() if s == "uncertain"
        )
        assert status.complete == (states.count("accepted") == N_RECIPIENTS)


TestLedgerInterleavings = LedgerMachine.TestCase
TestLedgerInterleavings.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_a_ledger_that_is_not_a_database_is_one_clear_line_and_is_left_as_it_was(
    workspace: Path,
) -> None:
    from click.testing import CliRunner

    from newsflash.cli import main

    ledger_file = workspace / "state" / "outbox-ledger.sqlite"
    ledger_file.parent.mkdir(parents=True, exist_ok=True)
    junk = b"this is a spreadsheet someone saved over the ledger\n" * 100
    ledger_file.write_bytes(junk)
    result = CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), "status", ED])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "outbox-ledger.sqlite: cannot open it as a SQLite database" in result.output
    assert "restore it from a backup" in result.output and "do not delete it" in result.output
    assert ledger_file.read_bytes() == junk


def test_a_ledger_from_a_newer_newsflash_is_refused_not_misread(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "ledger.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(LedgerError, match=r"newer newsflash \(schema 99.*upgrade newsflash"):
        Ledger(db)


def test_a_read_only_open_refuses_an_older_schema_and_leaves_the_file_alone(
    tmp_path: Path,
) -> None:
    """Only a writer may bring a ledger up to date; a reader that cannot write it says so
    rather than read tables that may lack what it asks."""
    db = tmp_path / "ledger.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")  # user_version 0
    before = db.read_bytes()
    with pytest.raises(LedgerError, match=r"schema 0, older than .* brings it up to date"):
        Ledger(db, read_only=True)
    assert db.read_bytes() == before
    with Ledger(db) as ledger:  # a writer upgrades it
        assert ledger.published_item_keys() == frozenset()
    with Ledger(db, read_only=True) as ledger:
        assert ledger.published_item_keys() == frozenset()


def test_a_read_only_open_of_a_missing_ledger_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state" / "ledger.sqlite"
    with pytest.raises(LedgerError, match="cannot open it as a SQLite database"):
        Ledger(db, read_only=True)
    assert not (tmp_path / "state").exists()


def test_a_read_only_ledger_refuses_a_write(db: Path) -> None:
    Ledger(db).close()
    with Ledger(db, read_only=True) as ledger, pytest.raises(sqlite3.OperationalError):
        ledger.record_approval("2022-02", "hash", "a reviewer")


def test_a_read_only_open_of_a_ledger_without_the_organisation_column_adds_nothing(
    tmp_path: Path,
) -> None:
    """A ledger from before recipients kept their organisation: a reader (the build's
    up-to-date check) reads it as it is; only a writer adds the column."""
    db = tmp_path / "ledger.sqlite"
    Ledger(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE recipients DROP COLUMN organisation")
    before = db.read_bytes()
    with Ledger(db, read_only=True) as ledger:
        assert ledger.published_item_keys() == frozenset()
    assert db.read_bytes() == before
