"""`newsflash subscribers apply`: the store's statuses go into subscribers.csv's status cells and
nowhere else. Files are compared byte for byte with the bytes a person would expect; the store,
the send lock and the file are real, and a real child process is SIGKILLed mid-write."""

from __future__ import annotations

import csv
import io
import os
import re
import stat
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsflash.cli import main
from newsflash.files import lock_exclusive, unlock
from newsflash.state.ledger import Ledger
from newsflash.state.suppressions import REASONS, SuppressionStore
from newsflash.state.writeback import REASON_STATUS, StoreView, WriteBackError, plan_writeback
from newsflash.state.writeback_file import (
    APPLY_LOCK,
    WRITTEN_FILE,
    Applied,
    SendRunningError,
    apply_statuses,
)
from newsflash.subscribers import STATUSES, load_subscribers

NOW = datetime(2026, 6, 17, 14, 0, tzinfo=ZoneInfo("Europe/Brussels"))
BACKUP = "subscribers.csv.2026-06-17T140000.bak"


def write_list(folder: Path, data: bytes) -> Path:
    path = folder / "subscribers.csv"
    path.write_bytes(data)
    return path


def suppress(folder: Path, *pairs: tuple[str, str]) -> None:
    store = SuppressionStore.in_state(folder / "state")
    try:
        for address, reason in pairs:
            store.add(address, reason, "by hand")
    finally:
        store.close()


def lift(folder: Path, address: str) -> None:
    store = SuppressionStore.in_state(folder / "state")
    try:
        assert store.lift(address, by="test") >= 1
    finally:
        store.close()


def apply(folder: Path, *, dry_run: bool = False) -> Applied:
    return apply_statuses(
        folder / "subscribers.csv", folder / "state", clock=lambda: NOW, dry_run=dry_run
    )


def statuses(path: Path) -> dict[str, str]:
    return {r.email: r.status for r in load_subscribers(path).recipients}


def backups(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("subscribers.csv.*.bak"))


# --- only the status cells change, whatever the spreadsheet saved ---------------------------

SEMICOLON_LATIN1_CRLF = (
    b"email;first_name;last_name;organisation;status;language\r\n"
    b'rene.dupont@example.org;Ren\xe9;Dupont;"Soci\xe9t\xe9 G\xe9n\xe9rale; Lyon";subscribed;fr\r\n'
    b'anne.muller@example.org;"Anne\nMarie";M\xfcller;"Werk ""S\xfcd""";"subscribed";de\r\n'
    b"jose.garcia@example.org; Jos\xe9 ;Garc\xeda;Uni;  subscribed ;es\r\n"
    b"kept@example.org;K\xe4the;K;K;subscribed;en\r\n"
)


def test_a_semicolon_latin1_crlf_list_changes_only_its_status_cells_byte_for_byte(
    tmp_path: Path,
) -> None:
    path = write_list(tmp_path, SEMICOLON_LATIN1_CRLF)
    suppress(
        tmp_path,
        ("rene.dupont@example.org", "unsubscribe"),
        ("anne.muller@example.org", "bounce"),
        ("jose.garcia@example.org", "spamreport"),
    )

    applied = apply(tmp_path)

    assert path.read_bytes() == (
        b"email;first_name;last_name;organisation;status;language\r\n"
        b'rene.dupont@example.org;Ren\xe9;Dupont;"Soci\xe9t\xe9 G\xe9n\xe9rale; Lyon";'
        b"unsubscribed;fr\r\n"
        b'anne.muller@example.org;"Anne\nMarie";M\xfcller;"Werk ""S\xfcd""";"bounced";de\r\n'
        b"jose.garcia@example.org; Jos\xe9 ;Garc\xeda;Uni;  complained ;es\r\n"
        b"kept@example.org;K\xe4the;K;K;subscribed;en\r\n"
    )
    assert [(c.line, c.address, c.old, c.new) for c in applied.plan.changes] == [
        (2, "rene.dupont@example.org", "subscribed", "unsubscribed"),
        (3, "anne.muller@example.org", "subscribed", "bounced"),
        (5, "jose.garcia@example.org", "subscribed", "complained"),
    ]
    assert (tmp_path / BACKUP).read_bytes() == SEMICOLON_LATIN1_CRLF
    assert statuses(path) == {
        "rene.dupont@example.org": "unsubscribed",
        "anne.muller@example.org": "bounced",
        "jose.garcia@example.org": "complained",
        "kept@example.org": "subscribed",
    }


def test_a_utf8_list_with_a_bom_and_no_final_newline_keeps_both_and_its_case_style(
    tmp_path: Path,
) -> None:
    original = (
        "\ufeffemail,first_name,status\n"
        "zoe@example.org,Zoë,Subscribed\n"
        'max@example.org,"Max, Jr.",SUBSCRIBED\n'
        "ida@example.org,Ída,subscribed"
    ).encode()
    path = write_list(tmp_path, original)
    suppress(tmp_path, ("zoe@example.org", "unsubscribe"), ("max@example.org", "unsubscribe"))
    suppress(tmp_path, ("ida@example.org", "invalid"))

    apply(tmp_path)

    assert (
        path.read_bytes()
        == (
            "\ufeffemail,first_name,status\n"
            "zoe@example.org,Zoë,Unsubscribed\n"
            'max@example.org,"Max, Jr.",UNSUBSCRIBED\n'
            "ida@example.org,Ída,bounced"
        ).encode()
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"], ids=["utf8", "excel_unicode_text"])
def test_a_tab_delimited_list_changes_only_its_status_cells(tmp_path: Path, encoding: str) -> None:
    text = "email\tname\tstatus\tlanguage\r\nana@example.org\tAna\tsubscribed\tpt\r\n"
    text += 'bo@example.org\t"Bo\tB"\tsubscribed\tsv\r\n'
    path = write_list(tmp_path, text.encode(encoding))
    suppress(tmp_path, ("bo@example.org", "unsubscribe"))

    apply(tmp_path)

    expected = text.replace('B"\tsubscribed', 'B"\tunsubscribed')
    assert path.read_bytes() == expected.encode(encoding)


def test_applying_twice_changes_nothing_the_second_time_and_writes_no_second_backup(
    tmp_path: Path,
) -> None:
    path = write_list(tmp_path, SEMICOLON_LATIN1_CRLF)
    suppress(tmp_path, ("kept@example.org", "unsubscribe"))
    first = apply(tmp_path)
    after_first = path.read_bytes()

    second = apply(tmp_path)

    assert len(first.plan.changes) == 1 and second.plan.changes == ()
    assert second.backup is None and backups(tmp_path) == [BACKUP]
    assert path.read_bytes() == after_first


def test_a_dry_run_shows_the_changes_and_writes_nothing(tmp_path: Path) -> None:
    path = write_list(tmp_path, SEMICOLON_LATIN1_CRLF)
    suppress(tmp_path, ("kept@example.org", "unsubscribe"))

    applied = apply(tmp_path, dry_run=True)

    assert [c.address for c in applied.plan.changes] == ["kept@example.org"]
    assert path.read_bytes() == SEMICOLON_LATIN1_CRLF
    assert backups(tmp_path) == [] and not (tmp_path / "state" / WRITTEN_FILE).exists()


# --- what each suppression means, and what a lift may undo ------------------------------------


@pytest.mark.parametrize("reason", REASONS)
def test_every_suppression_reason_writes_its_status(tmp_path: Path, reason: str) -> None:
    path = write_list(tmp_path, b"email,status\nana@example.org,subscribed\n")
    suppress(tmp_path, ("ana@example.org", reason))

    apply(tmp_path)

    assert statuses(path) == {"ana@example.org": REASON_STATUS[reason]}


def test_the_strongest_of_several_suppressions_wins_and_an_opt_out_is_never_downgraded(
    tmp_path: Path,
) -> None:
    path = write_list(
        tmp_path, b"email,status\nana@example.org,subscribed\nbo@example.org,complained\n"
    )
    suppress(
        tmp_path,
        ("ana@example.org", "bounce"),
        ("ana@example.org", "spamreport"),
        ("bo@example.org", "unsubscribe"),
    )

    applied = apply(tmp_path)

    assert statuses(path) == {"ana@example.org": "complained", "bo@example.org": "complained"}
    assert [c.address for c in applied.plan.changes] == ["ana@example.org"]


def test_a_block_is_not_written_as_a_bounce_and_the_summary_says_why() -> None:
    plan = plan_writeback(
        b"email,status\nana@example.org,subscribed\n",
        {"ana@example.org": StoreView(active=frozenset({"block"}))},
        Path("subscribers.csv"),
    )

    assert plan.changes == () and plan.data == b"email,status\nana@example.org,subscribed\n"
    assert "block is temporary" in plan.notes[0].message


def test_a_lifted_suppression_resubscribes_only_a_status_apply_wrote(tmp_path: Path) -> None:
    path = write_list(
        tmp_path, b"email,status\nana@example.org,subscribed\nbo@example.org,unsubscribed\n"
    )
    suppress(tmp_path, ("ana@example.org", "unsubscribe"), ("bo@example.org", "unsubscribe"))
    apply(tmp_path)  # ana: written by apply; bo: the secretariat's own
    lift(tmp_path, "ana@example.org")
    lift(tmp_path, "bo@example.org")

    applied = apply(tmp_path)

    assert statuses(path) == {"ana@example.org": "subscribed", "bo@example.org": "unsubscribed"}
    assert [n.address for n in applied.plan.notes] == ["bo@example.org"]
    assert "not written by `subscribers apply`" in applied.plan.notes[0].message


def test_a_partner_unsubscribed_by_hand_after_a_lift_stays_unsubscribed(tmp_path: Path) -> None:
    path = write_list(tmp_path, b"email,status\nana@example.org,subscribed\n")
    suppress(tmp_path, ("ana@example.org", "unsubscribe"))
    apply(tmp_path)
    lift(tmp_path, "ana@example.org")
    apply(tmp_path)  # back to subscribed: apply had written the opt-out
    path.write_bytes(b"email,status\nana@example.org,unsubscribed\n")  # phoned: by hand

    apply(tmp_path)

    assert statuses(path) == {"ana@example.org": "unsubscribed"}


def test_suppressed_addresses_missing_from_the_list_are_listed_and_not_added(
    tmp_path: Path,
) -> None:
    path = write_list(tmp_path, b"email,status\nana@example.org,subscribed\n")
    suppress(tmp_path, ("gone@example.org", "bounce"))

    applied = apply(tmp_path)

    assert applied.plan.not_on_list == ("gone@example.org",)
    assert path.read_bytes() == b"email,status\nana@example.org,subscribed\n"
    assert applied.backup is None


# --- hostile lists --------------------------------------------------------------------------

HOSTILE = (
    b"email,first_name,status\n"
    b"twice@example.org,One,subscribed\n"
    b"only-bad@example.org,Typo,unsubscrbed\n"
    b"toomany@example.org,A,B,subscribed\n"
    b'quote@example.org,"Open,subscribed\n'
    b"short@example.org,NoStatusCell\n"
    b"empty@example.org,Empty,\n"
    b'TWICE@Example.org,Two,"subscribed"\n'
    b"held@example.org,Good,unsubscribed\n"
    b"held@example.org,Bad,unsubscribd\n"
)


def test_an_address_on_two_rows_changes_on_both_and_rows_the_reader_skips_stay_byte_for_byte(
    tmp_path: Path,
) -> None:
    path = write_list(tmp_path, HOSTILE)
    every = [
        "twice@example.org",
        "only-bad@example.org",
        "toomany@example.org",
        "quote@example.org",
        "short@example.org",
        "empty@example.org",
    ]
    suppress(tmp_path, *[(a, "unsubscribe") for a in every])

    applied = apply(tmp_path)

    assert path.read_bytes() == HOSTILE.replace(
        b"twice@example.org,One,subscribed", b"twice@example.org,One,unsubscribed"
    ).replace(b'Two,"subscribed"', b'Two,"unsubscribed"')
    assert [c.line for c in applied.plan.changes] == [2, 8]
    assert applied.plan.skipped_lines == (3, 4, 5, 6, 7, 10)
    assert set(applied.plan.not_on_list) == set(every) - {"twice@example.org"}


def test_a_lift_does_not_resubscribe_an_address_that_also_stands_on_a_row_with_an_error(
    tmp_path: Path,
) -> None:
    path = write_list(tmp_path, HOSTILE)
    suppress(tmp_path, ("held@example.org", "unsubscribe"))
    apply(tmp_path)
    (tmp_path / "state" / WRITTEN_FILE).write_text(  # as if apply had written line 9
        '{"version": 1, "written": {"held@example.org": "unsubscribed"}}', encoding="utf-8"
    )
    lift(tmp_path, "held@example.org")

    applied = apply(tmp_path)

    assert path.read_bytes() == HOSTILE
    assert "also stands on a row with an error" in applied.plan.notes[0].message


def test_a_utf16_list_that_would_not_encode_back_to_its_bytes_is_refused_untouched(
    tmp_path: Path,
) -> None:
    original = b"\xff\xfe" + "\ufeffemail,status\r\nana@example.org,subscribed\r\n".encode(
        "utf-16-le"
    )
    path = write_list(tmp_path, original)
    suppress(tmp_path, ("ana@example.org", "unsubscribe"))

    with pytest.raises(WriteBackError, match="cannot be written back byte for byte"):
        apply(tmp_path)

    assert path.read_bytes() == original and backups(tmp_path) == []


def test_a_damaged_record_of_what_apply_wrote_is_one_clear_error(
    workspace: Path,
) -> None:
    suppress(workspace, ("anna.keller@example.org", "unsubscribe"))
    (workspace / "state" / WRITTEN_FILE).write_text("{not json", encoding="utf-8")
    before = (workspace / "subscribers.csv").read_bytes()

    result = CliRunner().invoke(
        main, ["--config", str(workspace / "config.toml"), "subscribers", "apply"]
    )

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert WRITTEN_FILE in result.output and "delete it" in result.output
    assert (workspace / "subscribers.csv").read_bytes() == before


# --- the file on disk -----------------------------------------------------------------------


def test_the_backup_is_dated_by_the_clock_and_never_overwritten(tmp_path: Path) -> None:
    path = write_list(
        tmp_path, b"email,status\nana@example.org,subscribed\nbo@example.org,subscribed\n"
    )
    suppress(tmp_path, ("ana@example.org", "unsubscribe"))
    apply(tmp_path)
    middle = path.read_bytes()
    suppress(tmp_path, ("bo@example.org", "unsubscribe"))

    second = apply(tmp_path)  # the same second on the injected clock

    assert set(backups(tmp_path)) == {BACKUP, "subscribers.csv.2026-06-17T140000-2.bak"}
    assert second.backup is not None and second.backup.read_bytes() == middle


def test_permissions_and_a_symlinked_list_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "private" / "partners.csv"
    real.parent.mkdir()
    real.write_bytes(b"email,status\nana@example.org,subscribed\n")
    real.chmod(0o640)
    (tmp_path / "subscribers.csv").symlink_to(real)
    suppress(tmp_path, ("ana@example.org", "unsubscribe"))

    apply(tmp_path)

    assert (tmp_path / "subscribers.csv").is_symlink()
    assert real.read_bytes() == b"email,status\nana@example.org,unsubscribed\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert (real.parent / "partners.csv.2026-06-17T140000.bak").exists()


def test_apply_is_refused_while_a_send_holds_its_lock_and_works_once_it_is_done(
    workspace: Path,
) -> None:
    suppress(workspace, ("anna.keller@example.org", "unsubscribe"))
    before = (workspace / "subscribers.csv").read_bytes()
    args = ["--config", str(workspace / "config.toml"), "subscribers", "apply"]
    with Ledger(workspace / "state" / "ledger.sqlite") as ledger, ledger.sending("2026-06"):
        with pytest.raises(SendRunningError, match="a send of edition 2026-06 is running"):
            apply(workspace)
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 1 and "Traceback" not in refused.output
        assert f"pid {os.getpid()}" in refused.output
        assert (workspace / "subscribers.csv").read_bytes() == before
        assert backups(workspace) == []

    done = CliRunner().invoke(main, args)

    assert done.exit_code == 0, done.output
    assert "anna.keller@example.org: subscribed -> unsubscribed" in done.output
    assert statuses(workspace / "subscribers.csv")["anna.keller@example.org"] == "unsubscribed"


def test_two_applies_at_once_the_second_is_refused(tmp_path: Path) -> None:
    write_list(tmp_path, b"email,status\nana@example.org,subscribed\n")
    suppress(tmp_path, ("ana@example.org", "unsubscribe"))
    fd = lock_exclusive(tmp_path / "state" / APPLY_LOCK)
    try:
        with pytest.raises(SendRunningError, match="another `newsflash subscribers apply`"):
            apply(tmp_path)
    finally:
        unlock(fd)


def test_the_cli_dry_run_prints_the_summary_and_the_bare_command_still_summarises(
    workspace: Path,
) -> None:
    suppress(workspace, ("anna.keller@example.org", "bounce"), ("nobody@example.org", "bounce"))
    config = ["--config", str(workspace / "config.toml")]

    dry = CliRunner().invoke(main, [*config, "subscribers", "apply", "--dry-run"])
    bare = CliRunner().invoke(main, [*config, "subscribers"])

    assert dry.exit_code == 0, dry.output
    assert "would change 1 status(es)" in dry.output
    assert "line 2: anna.keller@example.org: subscribed -> bounced" in dry.output
    assert "not on the list, not added (1)" in dry.output and "nobody@example.org" in dry.output
    assert "dry run: nothing written" in dry.output
    assert bare.exit_code == 0 and "audience (partners)" in bare.output
    assert backups(workspace) == []


# --- SIGKILL during the write-back ------------------------------------------------------------

# A real apply in a child process that stops after each step that touches the disk (each fsync
# and rename, as newsflash.files makes them) and waits for the parent, which either lets it go
# on or SIGKILLs it right there: every point between two disk steps gets its own kill.
CHILD = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    from pathlib import Path

    from newsflash.state.writeback_file import apply_statuses

    def stepping(name, real):
        def step(*args):
            result = real(*args)
            target = Path(args[1]).name if name == "replace" else ""
            print(name, target, flush=True)
            sys.stdin.readline()
            return result
        return step

    os.fsync = stepping("fsync", os.fsync)
    os.replace = stepping("replace", os.replace)
    folder = Path(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    apply_statuses(folder / "subscribers.csv", folder / "state", clock=lambda: datetime.now(UTC))
    print("done", flush=True)
    """
)
STEPS = [
    "fsync",
    "replace subscribers.csv.BACKUP",
    "fsync",  # the backup is whole and on disk ...
    "fsync",
    "replace subscribers.csv",  # ... before the list is replaced
    "fsync",
    "fsync",
    f"replace {WRITTEN_FILE}",
    "fsync",
]


def run_child_until(folder: Path, kill_after: int | None) -> list[str]:
    """The steps the child made; SIGKILLed after `kill_after` of them (None: let it finish)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    steps: list[str] = []
    try:
        assert child.stdout.readline().strip() == "ready"
        while kill_after is None or len(steps) < kill_after:
            child.stdin.write("\n")
            child.stdin.flush()
            line = child.stdout.readline().strip()
            if line in ("done", ""):
                break
            steps.append(re.sub(r"\.\d{4}-\d\d-\d\dT\d{6}\.bak$", ".BACKUP", line))
    finally:
        child.kill()
        output, _ = child.communicate(timeout=10)
    assert "Traceback" not in output, output
    return steps


@pytest.fixture
def big_list(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """A 2,000-row Latin-1 list with 223 suppressed partners, and the bytes apply makes of it."""
    rows = [b"email;name;status"]
    rows += [b'p%04d@example.org;"N\xe9e %d";subscribed' % (i, i) for i in range(2000)]
    old = b"\r\n".join(rows) + b"\r\n"
    path = write_list(tmp_path, old)
    suppress(tmp_path, *[(f"p{i:04d}@example.org", "unsubscribe") for i in range(0, 2000, 9)])
    views = {
        f"p{i:04d}@example.org": StoreView(frozenset({"unsubscribe"})) for i in range(0, 2000, 9)
    }
    new = plan_writeback(old, views, path).data
    assert new.count(b"unsubscribed") == 223
    return path, old, new


def test_an_apply_syncs_its_backup_before_it_replaces_the_list(
    big_list: tuple[Path, bytes, bytes],
) -> None:
    path, _, new = big_list

    assert run_child_until(path.parent, None) == STEPS
    assert path.read_bytes() == new


@pytest.mark.parametrize("kill_after", range(len(STEPS)))
def test_a_sigkill_at_any_point_of_the_write_back_leaves_the_old_or_the_new_list_whole(
    big_list: tuple[Path, bytes, bytes], kill_after: int
) -> None:
    path, old, new = big_list
    folder = path.parent

    assert len(run_child_until(folder, kill_after)) == kill_after

    replaced = kill_after >= STEPS.index("replace subscribers.csv") + 1
    assert path.read_bytes() == (new if replaced else old)
    assert [(folder / b).read_bytes() for b in backups(folder)] == [old] * (kill_after >= 2)
    final = apply(folder)  # the next apply finishes the job and tidies up
    assert path.read_bytes() == new
    assert not list(folder.glob(".*.tmp")) and not list((folder / "state").glob(".*.tmp"))
    assert bool(final.plan.changes) is not replaced


# --- any list a spreadsheet can save: only the status cells change -----------------------------

_NAME_CHARS = "abcXYZ019 ,;\t\"'\néüß-"
_WEIGHT = {"subscribed": 0, "bounced": 1, "unsubscribed": 2, "complained": 3}


@st.composite
def saved_lists(draw: st.DrawFn) -> tuple[list[list[str]], dict[str, str], dict[str, object]]:
    """Rows (address, name, status) as a spreadsheet might hold them, the suppressions to
    apply, and how the file is saved (delimiter, quoting, line ends, encoding, last newline)."""
    pool = [f"p{i}@example.org" for i in range(6)]
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(pool),
                st.text(_NAME_CHARS, max_size=8),
                st.sampled_from(STATUSES),
                st.sampled_from([str.lower, str.title, str.upper]),
            ),
            min_size=1,
            max_size=8,
        )
    )
    reasons = draw(st.dictionaries(st.sampled_from(pool), st.sampled_from(sorted(REASON_STATUS))))
    how = {
        "delimiter": draw(st.sampled_from([",", ";", "\t"])),
        "quoting": draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        "lineterminator": draw(st.sampled_from(["\r\n", "\n"])),
        "encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])),
        "last_newline": draw(st.booleans()),
    }
    table = [[a, n, case(s)] for a, n, s, case in rows]
    return table, reasons, how


def saved(table: list[list[str]], how: dict[str, object]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=str(how["delimiter"]),
        quoting=int(str(how["quoting"])),
        lineterminator=str(how["lineterminator"]),
    )
    writer.writerows([["email", "first_name", "status"], *table])
    text = out.getvalue()
    if not how["last_newline"]:
        text = text.removesuffix(str(how["lineterminator"]))
    return text.encode(str(how["encoding"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(saved_lists())
def test_any_saved_list_changes_only_in_the_status_cells_the_store_speaks_for(
    case: tuple[list[list[str]], dict[str, str], dict[str, object]],
) -> None:
    table, reasons, how = case
    expected = []
    for address, name, status in table:
        wanted = REASON_STATUS.get(reasons.get(address, ""), status.lower())
        better = _WEIGHT[wanted] > _WEIGHT[status.lower()]
        new = wanted if better else status.lower()
        shown = new.upper() if status.isupper() else new.title() if status[0].isupper() else new
        expected.append([address, name, shown if better else status])
    views = {a: StoreView(frozenset({r})) for a, r in reasons.items()}

    plan = plan_writeback(saved(table, how), views, Path("subscribers.csv"))

    assert plan.data == saved(expected, how)
    assert plan.notes == () and plan.skipped_lines == ()
