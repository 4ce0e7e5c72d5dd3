"""The scheduler's jobs called as the scheduler calls them: the send, its stops and resumes,
and what the reviewers are told when it fails or is missed.

Every test here runs at several fixed instants (the `clock` fixture of calendar_helpers,
time-machine with the clock ticking on), among them the hour after a first-Tuesday send: a
test must hold at any instant, not only on the day it was written.

Every send goes through the outbox transport (no SENDGRID_API_KEY in tests), so what a job did
is files to read: .eml per recipient in outbox/<edition>/, notices in outbox/notices/.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from calendar_helpers import (
    FAR,
    REVIEWER,
    TZ,
    body,
    clock_at_each_instant,  # noqa: F401  (the `clock` fixture: each test runs at every instant)
    ledger_status,
    notices,
    running,
    sent_completely,
    sent_files,
    set_marker_due,
    set_schedule,
    stop_sending_fixture,  # noqa: F401  (the `stop_sending` fixture)
    wait_for,
)
from conftest import own_template

from newsflash.errors import NewsflashError
from newsflash.pipeline import current_edition_id
from newsflash.schedule import jobs
from newsflash.state.ledgers import ledger_path

# -- the send, fired twice or for the month it was due -----------------------------------------


def test_a_send_job_fired_twice_sends_nothing_new(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    edition = current_edition_id(config)
    first = jobs.run_send(str(config.path))
    second = jobs.run_send(str(config.path))
    assert first.startswith(f"sent edition {edition}")
    assert "already sent to everyone" in second
    assert ledger_status(config, edition)[2] == 1


def test_the_send_carries_the_edition_of_the_month_it_was_due_not_of_when_it_ran(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Due at 22:00 on 31 January, run at 00:30 on 1 February (within grace): January's."""
    config = set_schedule(workspace, jobs={"send": {"day": "last", "hour": 22}})
    ran = dt.datetime(2025, 2, 1, 0, 30, tzinfo=TZ)
    load = jobs._load
    monkeypatch.setattr(jobs, "_load", lambda path: (load(path)[0], ran))
    outcome = jobs.run_send(str(config.path))
    assert outcome.startswith("sent edition 2025-01"), outcome
    assert not sent_files(config, "2025-02")


# -- stopping in the middle of a send ----------------------------------------------------------


def test_a_stopped_send_ends_after_its_batch_and_resumes_at_the_next_start(
    workspace: Path, stop_sending: Callable[[int], None]
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR}, batch_size=2, grace_hours=1)
    edition = current_edition_id(config)
    stop_sending(1)
    outcome = jobs.run_send(str(config.path))
    assert "stopped after 2 of" in outcome
    accepted, total, _ = ledger_status(config, edition)
    assert accepted == 2 < total
    assert jobs.interrupted_send(config) is not None
    set_marker_due(config, 0)  # due just now: well within the hour of grace

    with running(config):
        wait_for(lambda: sent_completely(config, edition))
    assert len(sent_files(config, edition)) == total
    assert jobs.interrupted_send(config) is None


def test_a_resumed_send_stopped_again_keeps_the_time_it_was_first_due(
    workspace: Path, stop_sending: Callable[[int], None]
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR}, batch_size=1, grace_hours=6)
    edition = current_edition_id(config)
    stop_sending(2)  # the send, and its resume
    assert "stopped after 1 of" in jobs.run_send(str(config.path))
    set_marker_due(config, 5)  # the send was due 5 hours ago: 1 hour of grace left
    marker = jobs.interrupted_send(config)
    assert marker is not None
    with running(config):  # resumes it, and is stopped again after one more batch
        wait_for(lambda: ledger_status(config, edition)[0] == 2)
    assert jobs.interrupted_send(config) == marker  # no fresh grace period for the resume


def test_a_send_handed_out_as_the_scheduler_stops_sends_nothing_and_starts_at_the_next_start(
    workspace: Path,
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    edition = current_edition_id(config)
    jobs.STOP.set()
    try:
        outcome = jobs.run_send(str(config.path))
    finally:
        jobs.STOP.clear()
    assert "did not start" in outcome
    assert not sent_files(config, edition) and not ledger_path(config, "outbox").exists()
    with running(config):
        wait_for(lambda: sent_completely(config, edition))
    assert jobs.interrupted_send(config) is None


# -- failures and missed sends, told to the reviewers ------------------------------------------


def test_a_broken_template_fails_the_scheduled_send_and_proof_and_tells_the_reviewers(
    workspace: Path,
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR, "proof": {"day": "last thu"}})
    own_template(config.root, "edition.txt.j2", "\n{% if %}\n")
    with pytest.raises(NewsflashError, match="template"):
        jobs.run_send(str(config.path))
    with pytest.raises(NewsflashError, match="template"):
        jobs.run_proof(str(config.path))
    send, proof = notices(config)
    assert "send FAILED" in str(send["Subject"]) and "edition.txt.j2" in body(send)
    assert "proof FAILED" in str(proof["Subject"]) and "edition.txt.j2" in body(proof)
    assert send["To"] == proof["To"] == REVIEWER


def test_a_failed_scheduled_send_is_reported_to_the_reviewers(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"send": FAR})
    config.subscribers_path.write_text("email,first_name,status,segments\n", encoding="utf-8")
    with pytest.raises(NewsflashError, match="no one to send to"):
        jobs.run_send(str(config.path))
    (notice,) = notices(config)
    assert "FAILED" in str(notice["Subject"]) and notice["To"] == REVIEWER
    assert "no one to send to" in body(notice)


def test_a_missed_send_already_made_by_hand_is_not_reported_as_not_sent(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = set_schedule(workspace, jobs={"send": FAR})
    edition = current_edition_id(config)
    assert jobs.run_send(str(config.path)).startswith(f"sent edition {edition}")
    jobs.report_missed_send(config, dt.datetime.now(TZ) - dt.timedelta(hours=7), 7.0)
    receipt = "your item went to"  # contributors' receipts of the send itself
    assert not [m for m in notices(config) if receipt not in str(m["Subject"])]
    assert "sent to everyone" in caplog.text
