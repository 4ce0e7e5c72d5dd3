"""`newsflash build EDITION` of unchanged inputs: answered from state/build-stamp/, as make
answers an up-to-date target, and a full build the moment any input differs.

Whether a build was full is seen from its files: a full build writes each one anew (another
inode), the up-to-date one writes nothing. Each kind of input is changed in turn and must give
a full build with the new result; the stamp is attacked (corrupt, foreign, edited) and must
give a full build, never an error.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import own_template

from newsflash import build_stamp, pipeline
from newsflash.cli import main
from newsflash.config import load_config
from newsflash.render_cache import tree_digest
from newsflash.state.ledger import Ledger
from newsflash.state.ledger_records import LedgerRecipient

EDITION = "2022-02"
FILES = ("email.html", "email.mjml", "email.txt", "manifest.json", "preview.eml")
UNPINNED = """---
title: An unpinned partner story
section: alliance
date: 2022-03-02
organisation: ASA Secretariat
summary: Ready for whichever edition comes next.
status: ready
---
The story of a partner, for the next edition that has not carried it.
"""


@pytest.fixture
def cli(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        """pytest names the phase it is in (setup, call) in the environment: a build in a
        fixture and one in the test would otherwise run in two environments."""
        runner = CliRunner(env={"PYTEST_CURRENT_TEST": None})
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


Identity = dict[str, tuple[int, int]]


def identity(workspace: Path, edition: str = EDITION) -> Identity:
    """Each build file's inode and mtime: a full build replaces every one of them."""
    out = workspace / "build" / edition
    return {n: ((s := (out / n).stat()).st_ino, s.st_mtime_ns) for n in FILES}


def stamp_file(workspace: Path, edition: str = EDITION) -> Path:
    return workspace / "state" / build_stamp.FOLDER / f"{edition}.json"


def built(cli: Callable[..., Result], workspace: Path, *args: str) -> tuple[Result, bool]:
    """Build EDITION (args before it: options) and say whether it was a full build."""
    edition = args[-1] if args else EDITION
    out = workspace / "build" / edition
    before = identity(workspace, edition) if (out / "email.html").exists() else None
    result = cli("build", *args) if args else cli("build", EDITION)
    after = identity(workspace, edition) if (out / "email.html").exists() else None
    full = before is None or after is None or all(before[n] != after[n] for n in FILES)
    if before is not None and after is not None and not full:
        assert before == after, "an up-to-date build rewrote some of the files"
    return result, full


@pytest.fixture
def stamped(cli: Callable[..., Result], workspace: Path) -> Result:
    """The sample built once: the full build, stamped."""
    result, full = built(cli, workspace)
    assert result.exit_code == 0, result.output
    assert full and stamp_file(workspace).is_file()
    return result


def test_a_build_again_of_unchanged_inputs_writes_nothing_and_prints_the_same(
    cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    again, full = built(cli, workspace)
    assert not full
    assert (again.exit_code, again.stdout, again.stderr) == (0, stamped.stdout, stamped.stderr)
    assert f"built {workspace / 'build' / EDITION}/" in again.stdout


def test_a_touched_but_identical_item_file_keeps_the_build_up_to_date(
    cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    item = workspace / "submissions" / EDITION / "newsflash-launch.md"
    os.utime(item, ns=(1, 1))
    item.write_bytes(item.read_bytes())
    _, full = built(cli, workspace)
    assert not full


def _edit_item(ws: Path) -> str:
    item = ws / "submissions" / EDITION / "newsflash-launch.md"
    text = item.read_text(encoding="utf-8")
    item.write_text(text.replace("title: The ASA launches", "title: The ASA opens"), "utf-8")
    return "The ASA opens the partners’ Newsflash"


def _new_item(ws: Path) -> str:
    (ws / "submissions" / EDITION / "zz-new.md").write_text(
        UNPINNED.replace("An unpinned partner story", "A brand-new partner story"), "utf-8"
    )
    return "A brand-new partner story"


def _removed_item(ws: Path) -> str:
    (ws / "submissions" / EDITION / "battery-albatts-results.md").unlink()
    return "!Battery subgroup presents the first ALBATTS results"


def _moved_item(ws: Path) -> str:
    """The same bytes under another name: the item's key, in the output, is its path."""
    folder = ws / "submissions" / EDITION
    (folder / "newsflash-launch.md").rename(folder / "launch.md")
    return "2022-02/launch.md"


def _template(ws: Path) -> str:
    own_template(ws, "edition.txt.j2", "A closing line of our own.")
    return "A closing line of our own.@email.txt"


def _config(ws: Path) -> str:
    path = ws / "config.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("mark the start of new year", "open the year"), "utf-8")
    return "open the year"


CHANGES: dict[str, Callable[[Path], str]] = {
    "an item's bytes": _edit_item,
    "a new item file": _new_item,
    "a removed item file": _removed_item,
    "an item file renamed": _moved_item,
    "a template of the workspace": _template,
    "config.toml": _config,
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_a_changed_input_makes_the_next_build_a_full_one_with_the_new_result(
    change: str, cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    """The expectation a change returns is text the new output shows ('!': no longer
    shows; '@email.html': in that file rather than on the terminal)."""
    expected = CHANGES[change](workspace)
    result, full = built(cli, workspace)
    assert full and result.exit_code == 0, result.output
    text, _, where = expected.partition("@")
    shown = (workspace / "build" / EDITION / where).read_text("utf-8") if where else result.stdout
    if text.startswith("!"):
        assert text[1:] not in shown and text[1:] in stamped.stdout
    else:
        assert text in shown
    again, full = built(cli, workspace)
    assert not full and again.stdout == result.stdout  # and the new build is stamped


def test_an_environment_variable_set_makes_the_next_build_a_full_one(
    cli: Callable[..., Result], workspace: Path, stamped: Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREMAILER_CACHE", "LFU")  # one the libraries read; any counts
    result, full = built(cli, workspace)
    assert full and result.stdout == stamped.stdout
    monkeypatch.delenv("PREMAILER_CACHE")
    _, full = built(cli, workspace)
    assert full


def test_the_shells_bookkeeping_and_a_new_login_sessions_variables_keep_the_build_up_to_date(
    cli: Callable[..., Result], workspace: Path, stamped: Result, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in build_stamp.UNREAD_ENV:
        monkeypatch.setenv(name, "changed by the shell")
    _, full = built(cli, workspace)
    assert not full


@pytest.mark.parametrize(
    "options",
    [("--allow-clip", EDITION), ("--config", "", EDITION), ("--debug",)],
    ids=["--allow-clip", "--config spelt otherwise", "--debug"],
)
def test_a_build_with_other_options_is_a_full_one(
    options: tuple[str, ...], cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    if options == ("--debug",):
        result = cli("--debug", "build", EDITION)
        assert result.exit_code == 0
        assert stamp_file(workspace).is_file()
        _, full = built(cli, workspace)
        assert full  # back without --debug: that stamp was --debug's
        return
    before = identity(workspace)
    absolute = str(workspace / "config.toml")  # the same file, named otherwise
    args = ("--config", absolute, "build", EDITION) if options[0] == "--config" else None
    result = cli(*args) if args else cli("build", *options)
    assert result.exit_code == 0
    assert all(before[n] != identity(workspace)[n] for n in FILES)


def _publish_the_unpinned_item(workspace: Path) -> None:
    """Record, through the ledger's own API, a February send that reached a partner with
    the unpinned item in its manifest."""
    manifest = json.dumps({"items": [{"path": "unpinned.md", "sha256": "0" * 64}]})
    with Ledger(workspace / "state" / "ledger.sqlite") as ledger, ledger.sending(EDITION):
        ledger.start_send(EDITION, "hash", manifest, [LedgerRecipient("r1", "a@example.org")])
        batch = ledger.next_batch(EDITION, 1000)
        assert batch is not None
        ledger.mark_accepted(batch.id, "msg-1")


def test_an_item_published_since_the_last_build_makes_a_full_build_that_leaves_it_out(
    cli: Callable[..., Result], workspace: Path
) -> None:
    (workspace / "submissions" / "unpinned.md").write_text(UNPINNED, encoding="utf-8")
    first, full = built(cli, workspace, "2022-03")
    assert full and "An unpinned partner story" in first.stdout
    _publish_the_unpinned_item(workspace)
    again, full = built(cli, workspace, "2022-03")
    assert full, "the ledger's sent state is an input"
    assert "An unpinned partner story" not in again.stdout
    assert "left out unpinned.md" in again.stdout


@pytest.mark.parametrize("damage", ["deleted", "edited", "added"])
def test_a_build_file_deleted_edited_or_added_since_makes_a_full_build(
    damage: str, cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    out = workspace / "build" / EDITION
    original = (out / "email.txt").read_bytes()
    html = (out / "email.html").stat().st_ino
    if damage == "deleted":
        (out / "email.txt").unlink()
    elif damage == "edited":
        (out / "email.txt").write_bytes(original.replace(b"Newsflash", b"Newsflesh"))
    else:
        (out / "notes.txt").write_text("the reviewer's notes", encoding="utf-8")
    result = cli("build", EDITION)
    assert result.exit_code == 0 and result.stdout == stamped.stdout
    assert (out / "email.txt").read_bytes() == original
    assert (out / "email.html").stat().st_ino != html, "not a full build"
    _, full = built(cli, workspace)
    assert not full  # the repairing build is stamped in turn (the reviewer's notes and all)


def _rewrite(path: Path, fn: Callable[[dict[str, object]], object]) -> None:
    path.write_text(json.dumps(fn(json.loads(path.read_text("utf-8")))), encoding="utf-8")


def _inputs_with(name: str, value: str) -> Callable[[dict[str, object]], object]:
    def edit(doc: dict[str, object]) -> object:
        digests = dict(doc["inputs"])  # type: ignore[call-overload]
        digests[name] = value
        return {**doc, "inputs": digests}

    return edit


CORRUPT: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "not JSON": lambda p: p.write_bytes(b"\x00\xffnot json at all"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:100]),
    "a list": lambda p: p.write_text("[1, 2, 3]", "utf-8"),
    "another format": lambda p: _rewrite(p, lambda d: {**d, "format": 999}),
    "another newsflash or Python": lambda p: _rewrite(p, _inputs_with("code", "0" * 64)),
    "no inputs": lambda p: _rewrite(p, lambda d: {k: v for k, v in d.items() if k != "inputs"}),
    "inputs a string": lambda p: _rewrite(p, lambda d: {**d, "inputs": "everything"}),
    "a stream that is neither": lambda p: _rewrite(p, lambda d: {**d, "tape": [["tty", "x"]]}),
    "exit code 2": lambda p: _rewrite(p, lambda d: {**d, "exit_code": 2}),
    "no outputs": lambda p: _rewrite(p, lambda d: {**d, "outputs": {}}),
    "a folder instead": lambda p: (p.unlink(), p.mkdir()),  # type: ignore[func-returns-value]
    "nested deeper than json reads": lambda p: p.write_text("[" * 200_000 + "]" * 200_000),
    "exit code 1.0": lambda p: _rewrite(p, lambda d: {**d, "exit_code": 1.0}),
    "exit code true": lambda p: _rewrite(p, lambda d: {**d, "exit_code": True}),
}


@pytest.mark.parametrize("corruption", CORRUPT, ids=list(CORRUPT))
def test_a_corrupt_or_foreign_stamp_is_a_full_build_never_an_error(
    corruption: str, cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    CORRUPT[corruption](stamp_file(workspace))
    result, full = built(cli, workspace)
    assert full
    assert (result.exit_code, result.stdout, result.stderr) == (0, stamped.stdout, "")


def test_a_linked_template_folder_is_never_stamped_and_an_edit_behind_it_shows(
    cli: Callable[..., Result], workspace: Path, tmp_path: Path
) -> None:
    """rglob does not walk into a linked folder, but Jinja2 reads through it: a stamp would
    replay the old email after a partial behind the link changed."""
    footer = own_template(tmp_path / "shared", "partials/footer.mjml.j2")
    shared = footer.parent
    (workspace / "templates").mkdir(exist_ok=True)
    (workspace / "templates" / "partials").symlink_to(shared, target_is_directory=True)
    first, full = built(cli, workspace)
    assert full and first.exit_code == 0, first.output
    assert not stamp_file(workspace).exists()
    footer.write_text(
        footer.read_text("utf-8").replace("Past editions", "Behind the link", 1), "utf-8"
    )
    again, full = built(cli, workspace)
    assert full and again.exit_code == 0, again.output
    assert "Behind the link" in (workspace / "build" / EDITION / "email.mjml").read_text("utf-8")


def test_a_config_reached_through_a_link_retargeted_to_another_workspace_is_a_full_build(
    cli: Callable[..., Result], workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same --config as typed and the same bytes, but another workspace behind the link."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    link = elsewhere / "news"
    link.symlink_to(workspace, target_is_directory=True)
    first = cli("--config", str(link / "config.toml"), "build", EDITION)
    assert first.exit_code == 0, first.output
    other = elsewhere / "other"  # a copy with the stamp, then an item edited
    subprocess.run(["cp", "-a", str(workspace), str(other)], check=True)
    _edit_item(other)
    link.unlink()
    link.symlink_to(other, target_is_directory=True)
    again = cli("--config", str(link / "config.toml"), "build", EDITION)
    assert again.exit_code == 0, again.output
    assert "The ASA opens" in (other / "build" / EDITION / "email.html").read_text("utf-8")


def _ledger_garbage(ws: Path) -> str:
    (ws / "state" / "ledger.sqlite").write_bytes(b"not a database, whatever it was")
    return "cannot open it as a SQLite database"


def _config_not_utf8(ws: Path) -> str:
    with (ws / "config.toml").open("ab") as f:
        f.write(b"\xff\xfe[[[")
    return "save it as UTF-8"


def _config_not_toml(ws: Path) -> str:
    with (ws / "config.toml").open("a", encoding="utf-8") as f:
        f.write("\n[paths\nstate = 1\n")
    return "not valid TOML"


BROKEN: dict[str, Callable[[Path], str]] = {
    "a ledger that is not a database": _ledger_garbage,
    "config.toml no longer UTF-8": _config_not_utf8,
    "config.toml no longer TOML": _config_not_toml,
}


@pytest.mark.parametrize("breakage", BROKEN, ids=list(BROKEN))
def test_an_input_broken_since_the_stamp_gets_the_full_builds_one_line_error(
    breakage: str, cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    expected = BROKEN[breakage](workspace)
    result = cli("build", EDITION)
    assert result.exit_code == 1
    assert expected in result.stderr and "Traceback" not in result.output


def test_a_corrupt_stamp_is_replaced_by_the_full_builds_own(
    cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    CORRUPT["truncated"](stamp_file(workspace))
    built(cli, workspace)
    _, full = built(cli, workspace)
    assert not full


def test_a_build_whose_input_changed_while_it_ran_is_not_stamped(
    cli: Callable[..., Result], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inputs are read before and after; an edit in between leaves no stamp, so the next
    build sees the edit."""
    real = pipeline.write_build

    def write_then_edit(*args: object, **kwargs: object) -> Path:
        _edit_item(workspace)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "write_build", write_then_edit)
    result = cli("build", EDITION)
    assert result.exit_code == 0
    assert not stamp_file(workspace).exists()
    monkeypatch.setattr(pipeline, "write_build", real)
    again, full = built(cli, workspace)
    assert full and "The ASA opens the partners’ Newsflash" in again.stdout


def test_a_build_whose_warnings_consult_today_is_never_stamped(
    cli: Callable[..., Result], workspace: Path
) -> None:
    """No item file points at 2024-05, so its 'far from the coming edition' warning depends
    on the day: every build of it is a full one."""
    (workspace / "submissions" / "unpinned.md").write_text(UNPINNED, encoding="utf-8")
    first = cli("build", "2024-05")
    assert first.exit_code == 0, first.output
    assert "far from the coming edition" in first.stdout
    assert not stamp_file(workspace, "2024-05").exists()
    _, full = built(cli, workspace, "2024-05")
    assert full


def test_the_coming_edition_by_default_is_never_stamped(
    cli: Callable[..., Result], workspace: Path
) -> None:
    result = cli("build")
    assert "the coming one by the schedule" in result.stdout
    assert not (workspace / "state" / build_stamp.FOLDER).exists()


@pytest.mark.parametrize("given", ["../../escape", "2022-2", "2022-02/../x", " 2022-02", "0000-00"])
def test_an_edition_id_that_is_not_one_gets_the_full_builds_error_and_no_stamp(
    given: str, cli: Callable[..., Result], workspace: Path, stamped: Result
) -> None:
    result = cli("build", given)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "write YYYY-MM" in result.stderr or "before" in result.stderr
    assert sorted(p.name for p in (workspace / "state" / build_stamp.FOLDER).iterdir()) == [
        f"{EDITION}.json"
    ]


def test_a_stamp_is_found_under_a_state_folder_config_toml_moves(
    cli: Callable[..., Result], workspace: Path
) -> None:
    path = workspace / "config.toml"
    path.write_text(path.read_text("utf-8") + '\n[paths]\nstate = "var/state"\n', "utf-8")
    built(cli, workspace)
    assert (workspace / "var" / "state" / build_stamp.FOLDER / f"{EDITION}.json").is_file()
    _, full = built(cli, workspace)
    assert not full


def test_no_files_bytes_can_pass_for_two_files(tmp_path: Path) -> None:
    """Two files, and one file holding both names and bodies as the digest once joined
    them, digest apart."""
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    (two / "a.md").write_bytes(b"X")
    (two / "b.md").write_bytes(b"Y")
    (one / "a.md").write_bytes(b"X\x000:b.md\x00Y")
    assert tree_digest([two]) != tree_digest([one])


# -- in fresh processes, as the secretariat runs it --------------------------------------

PROBE = (
    "pydantic", "rich", "markdown_it", "jinja2", "mjml", "premailer", "yaml", "email_validator",
    "apscheduler", "lxml", "cssutils",
)  # fmt: skip


def fresh_build(
    workspace: Path, *args: str, columns: str = "100"
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`newsflash --config ... build ARGS` in a new process, and which of PROBE it imported
    (printed after the command, outside what it prints)."""
    code = (
        "import sys\nfrom newsflash.cli import main\n"
        f"try:\n    main({['--config', str(workspace / 'config.toml'), 'build', *args]!r})\n"
        "except SystemExit as e:\n    code = e.code\n"
        f"print(repr(sorted(m for m in {PROBE!r} if m in sys.modules)), file=sys.__stderr__)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": columns, "HOME": str(workspace)},
    )
    *printed, modules = done.stderr.splitlines()
    done.stderr = "".join(f"{line}\n" for line in printed)
    return done, ast.literal_eval(modules)


def test_a_cold_up_to_date_build_prints_the_same_and_imports_no_model_parser_or_renderer(
    workspace: Path,
) -> None:
    first, heavy_first = fresh_build(workspace, EDITION)
    assert first.returncode == 0, first.stderr
    assert {"pydantic", "rich", "jinja2"} <= set(heavy_first)  # the full build's
    again, heavy = fresh_build(workspace, EDITION)
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, first.stderr)
    assert heavy == []


def test_a_cold_full_build_of_kept_inputs_prints_the_same_and_imports_no_pydantic(
    workspace: Path,
) -> None:
    """Issue 12's full build (no stamp to replay): the config from the config cache, the
    items' parses, the templates and the email from the caches, so no validation library,
    parser or renderer is imported; what it prints and writes is the first build's."""
    first, _ = fresh_build(workspace, EDITION)
    assert first.returncode == 0, first.stderr
    out = workspace / "build" / EDITION
    written = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "preview.eml"}
    shutil.rmtree(workspace / "state" / "build-stamp")
    full, heavy = fresh_build(workspace, EDITION)
    assert (full.returncode, full.stdout, full.stderr) == (0, first.stdout, first.stderr)
    assert heavy == ["rich"]  # the table it prints
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "preview.eml"} == written
    assert (workspace / "state" / "build-stamp" / f"{EDITION}.json").is_file()


def test_a_cold_build_with_item_errors_prints_them_again_the_same_way_and_exits_1(
    workspace: Path,
) -> None:
    """Such a build writes its files, so it is stamped with its output and its exit code."""
    broken = workspace / "submissions" / EDITION / "broken.md"
    broken.write_text("---\ntitle: [unclosed\nsection: nowhere\n---\nbody\n", encoding="utf-8")
    (workspace / "submissions" / "notes.txt").write_text("not an item", encoding="utf-8")
    first, _ = fresh_build(workspace, EDITION)
    assert first.returncode == 1
    assert "error" in first.stdout and "notes.txt" in first.stdout  # an error and a warning
    again, heavy = fresh_build(workspace, EDITION)
    assert (again.returncode, again.stdout, again.stderr) == (1, first.stdout, first.stderr)
    assert heavy == []


def test_a_narrower_terminal_makes_a_full_build_laid_out_for_it(workspace: Path) -> None:
    """rich lays the table out by the terminal's width, read once a process: a build again
    in a narrower terminal prints what a full build prints there."""
    wide, _ = fresh_build(workspace, EDITION)
    narrow, heavy = fresh_build(workspace, EDITION, columns="60")
    assert narrow.returncode == 0 and "rich" in heavy

    def border(out: str) -> str:
        return next(line for line in out.splitlines() if line.startswith("┏"))

    assert len(border(narrow.stdout)) <= 60 < len(border(wide.stdout))
    again, heavy = fresh_build(workspace, EDITION, columns="60")
    assert again.stdout == narrow.stdout and heavy == []


TRACE = """
import collections.abc, os, sys, urllib.parse
opened, env_read = set(), set()
def hook(event, args):
    if event in ("open", "sqlite3.connect") and isinstance(args[0], (str, os.PathLike)):
        name = os.fspath(args[0])
        if name.startswith("file:"):  # a read-only open names the file by its URI
            name = urllib.parse.unquote(urllib.parse.urlsplit(name).path)
        opened.add(os.path.realpath(name))
real = os.environ
class Recording(collections.abc.MutableMapping):
    def __getitem__(self, k): env_read.add(k); return real[k]
    def __setitem__(self, k, v): real[k] = v
    def __delitem__(self, k): del real[k]
    def __iter__(self): return iter(real)
    def __len__(self): return len(real)
    def get(self, k, default=None): env_read.add(k); return real.get(k, default)
    def __contains__(self, k): env_read.add(k); return k in real
    def copy(self): return real.copy()
os.environ = Recording()
sys.addaudithook(hook)
from newsflash.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(repr((sorted(opened), sorted(env_read))), file=sys.__stderr__)
"""


def test_a_full_build_reads_only_what_its_stamp_keys_and_never_the_partner_list(
    workspace: Path,
) -> None:
    """Traced: every file a full build opens (Python's own and the libraries' aside) is
    config.toml, under the items, templates or state folders, or its own output; and no
    environment variable it reads is one the stamp leaves out."""
    (workspace / "state").mkdir()
    _publish_the_unpinned_item(workspace)  # a ledger to read
    own_template(workspace, "partials/footer.mjml.j2")
    done = subprocess.run(
        [sys.executable, "-c", TRACE, "--config", "config.toml", "build", "2022-03"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(workspace)},
    )
    opened, env_read = ast.literal_eval(done.stderr.splitlines()[-1])
    ws = os.path.realpath(workspace)
    # HOME's cache: a kept Config is what validating config.toml gives (config_cache.py), a
    # kept item what parsing its file's bytes gives (item_cache.py), a kept template what
    # compiling its source gives (template_cache.py, checked against the source), a kept
    # email what rendering its key's inputs gives (email_cache.py): each keyed by the code,
    # none an input the stamp must key.
    kept = tuple(f"{ws}/.cache/newsflash/{f}/" for f in ("config", "items", "templates", "emails"))
    opened = [p for p in opened if not p.startswith(kept)]
    mine = [
        p
        for p in opened
        if p.startswith(ws + os.sep) and not p.startswith(f"{ws}/__editable__")  # sys.path's
    ]
    keyed = ("config.toml", "submissions/", "templates/", "state/", "build/2022-03/")
    assert mine and all(p[len(ws) + 1 :].startswith(keyed) for p in mine), mine
    assert any("/state/ledger.sqlite" in p for p in mine)
    assert not any(p.endswith("subscribers.csv") for p in opened)
    package = os.path.dirname(os.path.realpath(build_stamp.__file__))
    roots = [os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, package)]
    roots += ["/usr/share/zoneinfo", "/dev/", f"{ws}/__editable__"]  # time zones, sys.path's
    roots += [os.path.realpath(p) for p in Path(package).rglob("*") if p.is_symlink()]
    others = [p for p in opened if p not in mine and not any(p.startswith(r) for r in roots)]
    assert others == []
    assert not set(env_read) & build_stamp.UNREAD_ENV
    config = load_config(workspace / "config.toml")
    assert str(config.state_dir).startswith(ws)


def _ledger_files(workspace: Path) -> dict[str, tuple[int, bytes]]:
    """Each of the ledger's files (the database, its WAL) as mtime and bytes."""
    found = {}
    for name in ("ledger.sqlite", "ledger.sqlite-wal"):
        path = workspace / "state" / name
        if path.exists():
            found[name] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


def test_an_up_to_date_build_leaves_the_ledger_as_it_was(
    cli: Callable[..., Result], workspace: Path
) -> None:
    """The check reads what was published with a read-only open: no schema script, no write,
    so a backup tool or a reviewer watching the ledger's mtime sees nothing change."""
    (workspace / "state").mkdir()
    _publish_the_unpinned_item(workspace)  # February sent: March is built beside it
    first, full = built(cli, workspace, "2022-03")
    assert full and first.exit_code == 0, first.output
    before = _ledger_files(workspace)
    assert "ledger.sqlite" in before
    again, full = built(cli, workspace, "2022-03")
    assert not full and again.exit_code == 0, again.output
    assert _ledger_files(workspace) == before


def test_an_up_to_date_build_does_not_wait_for_a_send_that_holds_the_ledger(
    cli: Callable[..., Result], workspace: Path
) -> None:
    """A send holds the ledger's write lock while it claims a batch; a reviewer's build of the
    unchanged edition meanwhile is replayed at once instead of waiting out SQLite's busy
    timeout (and then failing with "busy")."""
    (workspace / "state").mkdir()
    _publish_the_unpinned_item(workspace)  # February sent: March is built beside it
    first, full = built(cli, workspace, "2022-03")
    assert full and first.exit_code == 0, first.output
    holder = sqlite3.connect(workspace / "state" / "ledger.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE batches SET updated_at = updated_at")
        again, full = built(cli, workspace, "2022-03")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not full and again.exit_code == 0, again.output
    assert (again.stdout, again.stderr) == (first.stdout, first.stderr)
