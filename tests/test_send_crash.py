"""A real `newsflash send` process is SIGKILLed mid-send and resumed: nobody lost, nobody twice.

Each scenario runs `python -m newsflash.cli send 2022-02 --yes` against the fake SendGrid
(served from this test process) for 50 partners in batches of 5 (10 requests), kills it with
SIGKILL at a chosen moment, then resumes it in two separate ways from the same crashed state:

* **plain resume** (`newsflash send 2022-02`): afterwards every recipient is either accepted
  in the ledger and received exactly once by the server, or listed as uncertain by
  `newsflash status` and received at most once. Nobody is pending, failed or lost, and no
  one received it twice.
* **resume with --resend-uncertain**: afterwards every recipient is accepted in the ledger.
  Each recipient received it exactly once, except the members of the batch that was in flight
  at the kill: they received it once more than the server had at the kill, i.e. twice exactly
  when SendGrid had accepted that batch but the answer never reached the ledger. That duplicate
  is the documented price of asking for --resend-uncertain, and the only one allowed; with
  SendGrid's events for that batch received by the webhook, only those no event vouched for.

Kill points (k = the request number, batches of 5):

* ``in_flight``: request k reached the server, which holds it unanswered (nothing accepted);
* ``accepted_unrecorded``: the server accepted request k but its answer never came;
* ``race``: request k was answered normally and the process is killed at once, wherever it
  has got to (the ledger may or may not have recorded it, the next request may have left).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_sendgrid import DEFAULT_API_KEY, FakeSendGrid, running_server
from test_uncertain_settle import _event as event
from test_uncertain_settle import _post_events as post_events

from newsflash.cli import main
from newsflash.config import load_config

ED = "2022-02"
N = 50
BATCH = 5
AUDIENCE = [f"partner{i:02d}@example.org" for i in range(N)]


def prepare(ws: Path, concurrency: int = 1) -> None:
    rows = ["email,first_name,last_name,organisation,segments,status,language"]
    rows += [f"{a},P{i},L{i},Org {i},partners,subscribed,en" for i, a in enumerate(AUDIENCE)]
    rows.append("outsider@example.org,O,U,Other,press,subscribed,en")
    (ws / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = ws / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("batch_size = 1000", f"batch_size = {BATCH}")
    text = text.replace("timeout = 30", "timeout = 20").replace("retries = 4", "retries = 0")
    text = text.replace("require_approval = true", "require_approval = false")
    # No wait before --resend-uncertain (no events come here), and no sync with SendGrid's
    # suppression lists first: its requests would take the faults meant for Mail Send.
    text = text.replace("[sendgrid]\n", "[sendgrid]\nresend_uncertain_after_minutes = 0\n")
    text = text.replace("[sendgrid]\n", "[sendgrid]\nsync_before_send = false\n")
    # Nor receipts to the items' contacts once the send is complete: they are not partners.
    text = re.sub(r"^(\[receipts\].*\n)enabled = \w+$", r"\1enabled = false", text, flags=re.M)
    text = re.sub(r"^concurrency = .*$", f"concurrency = {concurrency}", text, flags=re.M)
    assert f"batch_size = {BATCH}" in text and "timeout = 20" in text
    assert "resend_uncertain_after_minutes = 0" in text and "sync_before_send = false" in text
    assert re.search(r"^\[receipts\].*\nenabled = false$", text, re.M)
    assert f"concurrency = {concurrency}" in text
    config.write_text(text, encoding="utf-8")


def cli(ws: Path, sg: FakeSendGrid, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SENDGRID_API_KEY": DEFAULT_API_KEY, "NEWSFLASH_SENDGRID_HOST": sg.url}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "newsflash.cli",
            "--config",
            str(ws / "config.toml"),
            "send",
            ED,
            "--yes",
            *args,
        ],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run(ws: Path, sg: FakeSendGrid, *args: str) -> str:
    proc = cli(ws, sg, *args)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), out  # 1: uncertain recipients remain, which is expected
    assert "Traceback" not in out, out
    return out


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"send finished before {what}: {proc.communicate()[0]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def ledger_states(ws: Path) -> dict[str, str]:
    """Every recipient's state, read through a connection closed before this returns.

    `with sqlite3.connect()` only commits, and a Python 3.11 connection is in a reference
    cycle (its statement cache), so an unclosed one lives on until the garbage collector runs.
    While it lives, this process maps the ledger's -shm: a plain open() and close() of the
    ledger's files here (copy_workspace's files) cancels this process's POSIX locks on them, the
    resumed send then believes it is the last user, checkpoints and deletes the -wal and -shm,
    and the stale connection's close later checkpoints from its stale WAL index into the new
    -wal, destroying the ledger ("file is not a database"). Nor may a missing ledger be
    created empty by looking at it.
    """
    path = ws / "state" / "ledger.sqlite"
    assert path.is_file(), f"{path} is missing"
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT r.email, COALESCE(b.state, 'pending') FROM recipients r "
            "LEFT JOIN batches b ON b.id = r.batch_id WHERE r.edition_id = ?",
            (ED,),
        ).fetchall()
    return dict(rows)


def copy_workspace(ws: Path, dst: Path) -> Path:
    """The same crashed state in a second workspace beside `ws` (never inside it, where a later
    copy would take the earlier one along).

    The ledger is copied by SQLite's own backup, with everything its WAL holds, not file by
    file: copying a live ledger's files with plain open() and close() in a process that has
    it open through SQLite cancels that process's locks (see ledger_states).
    """
    ledger_files = shutil.ignore_patterns("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm")
    shutil.copytree(ws, dst, ignore=ledger_files, dirs_exist_ok=True)
    source, target = ws / "state" / "ledger.sqlite", dst / "state" / "ledger.sqlite"
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as out,
    ):
        src.backup(out)
    return dst


def assert_resumed_once_each_but(
    uncertain: set[str], final: dict[str, str], received: Counter[str]
) -> None:
    """After a plain resume: the `uncertain` ones stay so, got it at most once (if the kill
    caught SendGrid accepting), and everyone else is accepted and got it exactly once."""
    for address in AUDIENCE:
        if address in uncertain:
            assert final[address] == "uncertain" and received[address] <= 1
        else:
            assert final[address] == "accepted" and received[address] == 1, address


def listed_uncertain(ws: Path) -> set[str]:
    """The addresses `newsflash status` lists under its "uncertain (n):" heading."""
    result = CliRunner().invoke(main, ["--config", str(ws / "config.toml"), "status", ED, "--all"])
    assert result.exit_code == 0, result.output
    listed: set[str] = set()
    inside = False
    for line in result.output.splitlines():
        if line.startswith("uncertain ("):
            inside = True
        elif inside and line.startswith("  "):
            listed.add(line.split()[0])
        else:
            inside = False
    return listed


def crash(ws: Path, sg: FakeSendGrid, kind: str, k: int) -> None:
    for _ in range(k - 1):
        sg.inject("slow", seconds=0)  # an ordinary answer, so the k-th request gets the fault
    if kind == "in_flight":
        sg.inject("hang", seconds=60)
    elif kind == "accepted_unrecorded":
        sg.inject("accept_then_hang", seconds=60)
    proc = cli(ws, sg)
    try:
        if kind == "in_flight":
            wait_for(
                lambda: not sg.pending_faults and len(sg.request_log) == k - 1,
                proc,
                f"request {k} to be in flight",
            )
        elif kind == "accepted_unrecorded":
            wait_for(lambda: len(sg.accepted_requests) == k, proc, f"request {k} to be accepted")
        else:
            wait_for(lambda: len(sg.request_log) >= k, proc, f"request {k} to be answered")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("kind", "k"),
    [("in_flight", 1), ("accepted_unrecorded", 3), ("in_flight", 7), ("race", 5)],
)
def test_a_killed_send_resumes_with_nobody_lost_and_nobody_sent_twice(
    tmp_path_factory: pytest.TempPathFactory, workspace: Path, kind: str, k: int
) -> None:
    prepare(workspace)
    with running_server() as sg:
        crash(workspace, sg, kind, k)
        at_crash = Counter(sg.all_recipients())
        states = ledger_states(workspace)
        in_flight = {a for a, s in states.items() if s == "in_flight"}
        if kind != "race":  # the kill came exactly where it was meant to
            counts = Counter(states.values())
            assert (counts["accepted"], counts["in_flight"], counts["pending"]) == (
                BATCH * (k - 1),
                BATCH,
                N - BATCH * k,
            )
            assert len(counts) == 2 + (k > 1)
            assert sum(at_crash.values()) == BATCH * (k - 1 + (kind == "accepted_unrecorded"))
        # The same crashed state, for the second way.
        other = copy_workspace(workspace, tmp_path_factory.mktemp("resend"))

        # 1. A plain resume.
        run(workspace, sg)
        received = Counter(sg.all_recipients())
        final = ledger_states(workspace)
        uncertain = listed_uncertain(workspace)
        assert set(received) <= set(AUDIENCE)
        assert set(final) == set(AUDIENCE)
        assert uncertain == in_flight  # exactly the batch the kill interrupted
        assert_resumed_once_each_but(uncertain, final, received)

    # 2. From the same crashed state: resume with --resend-uncertain.
    with running_server() as sg2:
        run(other, sg2, "--resend-uncertain")
        received = at_crash + Counter(sg2.all_recipients())
        final = ledger_states(other)
        assert listed_uncertain(other) == set()
        assert set(final.values()) == {"accepted"} and set(final) == set(AUDIENCE)
        for address in AUDIENCE:
            expected = 1 + at_crash[address] if address in in_flight else 1
            assert received[address] == expected, address
        duplicates = {a for a in AUDIENCE if received[a] > 1}
        assert duplicates == ({a for a in in_flight if at_crash[a]})
        if kind == "accepted_unrecorded":
            assert len(duplicates) == BATCH
        if kind == "in_flight":
            assert not duplicates


def test_sigterm_stops_the_send_cleanly_and_the_interrupted_batch_is_uncertain(
    workspace: Path,
) -> None:
    prepare(workspace)
    with running_server() as sg:
        sg.inject("slow", seconds=0)
        sg.inject("hang", seconds=60)
        proc = cli(workspace, sg)
        try:
            wait_for(lambda: not sg.pending_faults, proc, "request 2 to be in flight")
        finally:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 130, out
        assert "interrupted" in out and "newsflash status 2022-02" in out
        assert "Traceback" not in out
        states = Counter(ledger_states(workspace).values())
        assert (states["accepted"], states["in_flight"]) == (BATCH, BATCH)
        run(workspace, sg)  # resumes: the interrupted batch becomes uncertain, the rest is sent
        assert listed_uncertain(workspace) == set(AUDIENCE[BATCH : 2 * BATCH])
        assert Counter(sg.all_recipients()) == Counter(AUDIENCE[:BATCH] + AUDIENCE[2 * BATCH :])


def test_a_send_killed_after_sendgrid_accepted_resends_only_whom_no_event_vouched_for(
    workspace: Path,
) -> None:
    """The doubles --resend-uncertain used to cost: SendGrid's events, received by the real
    webhook, settle the killed batch, and only the partner without an event gets a second copy."""
    prepare(workspace)
    config = load_config(workspace / "config.toml")
    with running_server() as sg:
        crash(workspace, sg, "accepted_unrecorded", 2)
        killed = [p["to"][0]["email"] for p in sg.accepted_requests[-1].body["personalizations"]]
        assert ledger_states(workspace)[killed[0]] == "in_flight"
        post_events(config, [event(n, "processed", a, sg) for n, a in enumerate(killed[:4])])
        run(workspace, sg, "--resend-uncertain")
        received = Counter(sg.all_recipients())
    assert {a for a in AUDIENCE if received[a] != 1} == {killed[4]}
    assert received[killed[4]] == 2
    assert set(ledger_states(workspace).values()) == {"accepted"}


def test_a_kill_with_four_batches_in_flight_leaves_exactly_those_four_uncertain(
    tmp_path_factory: pytest.TempPathFactory, workspace: Path
) -> None:
    prepare(workspace, concurrency=4)
    with running_server() as sg:
        for _ in range(4):
            sg.inject("slow", seconds=0)  # the first four batches are answered
        for _ in range(3):
            sg.inject("hang", seconds=60)  # the next four are all in flight at the kill,
        sg.inject("accept_then_hang", seconds=60)  # one of them accepted, its answer lost
        proc = cli(workspace, sg)
        try:
            wait_for(
                lambda: (
                    not sg.pending_faults
                    and Counter(ledger_states(workspace).values())["accepted"] == 4 * BATCH
                ),
                proc,
                "four batches answered and four in flight",
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        at_crash = Counter(sg.all_recipients())
        states = ledger_states(workspace)
        in_flight = {a for a, s in states.items() if s == "in_flight"}
        counts = Counter(states.values())
        assert (counts["accepted"], counts["in_flight"], counts["pending"]) == (20, 20, 10)
        assert sum(at_crash.values()) == 5 * BATCH  # four answered, one accepted unanswered
        other = copy_workspace(workspace, tmp_path_factory.mktemp("resend"))

        run(workspace, sg)
        received = Counter(sg.all_recipients())
        assert listed_uncertain(workspace) == in_flight  # exactly the four batches in flight
        final = ledger_states(workspace)
        assert_resumed_once_each_but(in_flight, final, received)

    with running_server() as sg2:
        run(other, sg2, "--resend-uncertain")
        received = at_crash + Counter(sg2.all_recipients())
        assert set(ledger_states(other).values()) == {"accepted"}
        duplicates = {a for a in AUDIENCE if received[a] > 1}
        assert len(duplicates) == BATCH and duplicates <= in_flight  # the one accepted unanswered
        assert all(received[a] >= 1 for a in AUDIENCE)
