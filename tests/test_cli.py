"""The command line, run as a partner's secretariat runs it, inside a copy of the sample.

Exit codes: 0 ok, 1 for any error the user can act on (one clear line, no traceback unless
--debug), 2 for usage errors.
"""

from __future__ import annotations

import ast
import email
import email.policy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from newsflash.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "items"
SAMPLE_TITLES = (
    "The ASA launches the partners’ Newsflash",
    "Working Group 1 holds its first meeting",
    "Battery subgroup presents the first ALBATTS results",
    "The agenda ahead: DRIVES concludes, ALBATTS delivers",
)
DRAFT_TITLE = "Working Group 2 maps the training offer"
MARCH_TITLE = "DRIVES final conference"
BUILD_FILES = ["email.html", "email.mjml", "email.txt", "manifest.json", "preview.eml"]


@pytest.fixture
def cli(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `newsflash ARGS` in-process, in the workspace, with stdout and stderr apart."""
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=True)

    return run


def run_module(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m newsflash.cli ARGS` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "newsflash.cli", *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(workspace)},
    )


def visible_text(html: str) -> str:
    parts: list[str] = []

    class Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            parts.append(data)

    Text(convert_charrefs=True).feed(html)
    return " ".join(" ".join(parts).split())


def break_config(workspace: Path) -> None:
    """One mistake in config.toml: a misspelt key."""
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    old = 'name = "ASA Newsflash"'
    path.write_text(text.replace(old, f'{old}\nnmae = "ASA Newsflash"'), encoding="utf-8")


# -- check -------------------------------------------------------------------------------


def test_check_passes_on_the_sample(cli: Callable[..., Result]) -> None:
    result = cli("check")
    assert result.exit_code == 0, result.output
    assert "6 valid, 0 with errors" in result.stdout
    assert "calendar 4 job(s): ok" in result.stdout
    assert "Traceback" not in result.output


def test_check_fails_with_a_broken_file_printing_every_problem(
    cli: Callable[..., Result], workspace: Path
) -> None:
    broken = [
        "bad_date.md",
        "unknown_field_with_typo.md",
        "not_utf8.md",
        "several_problems_at_once.md",
    ]
    for name in broken:
        shutil.copy(FIXTURES / name, workspace / "submissions" / name)

    result = cli("check")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    out = result.stdout
    assert "6 valid, 4 with errors" in out
    assert "bad_date.md:4: date: '17 January 2022' is not a date" in out
    assert "unknown_field_with_typo.md:2: titel: unknown field. Did you mean 'title'?" in out
    assert "not_utf8.md:2: not UTF-8" in out
    for where in (":3: section:", ":4: date:", ":5: status:", ":6: image_alt:", ":8: body:"):
        assert f"several_problems_at_once.md{where}" in out


def test_check_names_a_schedule_job_whose_cron_fields_make_no_calendar(
    cli: Callable[..., Result], workspace: Path
) -> None:
    """A build of a named edition does not read the calendar, so `check` is where a typo in
    a job's cron fields shows before the scheduler meets it."""
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count('day = "1st tue"') == 1  # the send job's
    path.write_text(text.replace('day = "1st tue"', 'day = "1st tuesday"'), encoding="utf-8")

    result = cli("check")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "calendar" in result.stdout and "[schedule.send]" in result.stdout
    assert "6 valid, 0 with errors" in result.stdout  # the rest is still checked
    assert "subscribers 13 rows" in result.stdout


def test_check_fails_in_a_separate_process_without_traceback(workspace: Path) -> None:
    shutil.copy(FIXTURES / "yaml_syntax_error.md", workspace / "submissions")
    result = run_module(workspace, "check")
    assert result.returncode == 1
    assert "yaml_syntax_error.md:6: " in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# -- build -------------------------------------------------------------------------------


def test_build_writes_the_five_files_with_every_sample_item(
    cli: Callable[..., Result], workspace: Path
) -> None:
    result = cli("build", "2022-02")
    assert result.exit_code == 0, result.output

    out = workspace / "build" / "2022-02"
    assert sorted(p.name for p in out.iterdir()) == BUILD_FILES
    html = visible_text((out / "email.html").read_text(encoding="utf-8"))
    text = (out / "email.txt").read_text(encoding="utf-8")
    mjml = (out / "email.mjml").read_text(encoding="utf-8")
    for title in SAMPLE_TITLES:
        assert title in html
        assert title in text
    for absent in (DRAFT_TITLE, MARCH_TITLE):
        assert absent not in html
        assert absent not in text
        assert absent not in mjml
    assert "<mjml" in mjml and "<mj-body" in mjml

    message = email.message_from_bytes(
        (out / "preview.eml").read_bytes(), policy=email.policy.default
    )
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"].startswith("ASA Newsflash No. 1")
    assert message["List-Unsubscribe"]
    plain = message.get_body(("plain",))
    assert plain is not None and SAMPLE_TITLES[1] in plain.get_content()

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["edition"] == "2022-02"
    assert manifest["number"] == 1
    assert len(manifest["items"]) == 4
    assert {lo["path"] for lo in manifest["left_out"]} == {
        "2022-03/drives-final-conference.md",
        "drafts/wg2-training-offer.md",
    }
    assert "left out" in result.stdout
    assert "built" in result.stdout


def test_build_with_a_broken_file_still_builds_the_others_and_exits_1(
    cli: Callable[..., Result], workspace: Path
) -> None:
    shutil.copy(FIXTURES / "bad_date.md", workspace / "submissions" / "bad_date.md")
    result = cli("build", "2022-02")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "bad_date.md: invalid" in result.stdout
    html = (workspace / "build" / "2022-02" / "email.html").read_text(encoding="utf-8")
    assert all(title in visible_text(html) for title in SAMPLE_TITLES)


def test_build_of_a_bad_edition_id_is_one_line_and_exit_1(cli: Callable[..., Result]) -> None:
    result = cli("build", "2022-13")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: '2022-13' is not an edition; write YYYY-MM, e.g. 2022-02."
    ]


# -- new ---------------------------------------------------------------------------------


def test_new_creates_an_item_file_that_check_accepts(
    cli: Callable[..., Result], workspace: Path
) -> None:
    result = cli("new", "wg1", "--title", "X", "--date", "2022-02-10")
    assert result.exit_code == 0, result.output
    path = workspace / "submissions" / "2022-02-10-x.md"
    assert path.is_file()
    assert str(path) in result.stdout.replace("\n", "")
    text = path.read_text(encoding="utf-8")
    assert "title: X\n" in text and "section: wg1\n" in text

    check = cli("check")
    assert check.exit_code == 0, check.output
    assert "7 valid, 0 with errors" in check.stdout


def test_new_twice_with_the_same_title_refuses_to_overwrite(cli: Callable[..., Result]) -> None:
    assert cli("new", "wg1", "--title", "X", "--date", "2022-02-10").exit_code == 0
    again = cli("new", "wg1", "--title", "X", "--date", "2022-02-10")
    assert again.exit_code == 1
    assert "exists already" in again.stderr


def test_new_with_an_unknown_section_lists_the_valid_ones(
    cli: Callable[..., Result], workspace: Path
) -> None:
    result = cli("new", "nosuchsection")
    assert result.exit_code == 1
    assert "unknown section 'nosuchsection'" in result.stderr
    assert "alliance, wg1, wg2, battery, projects, events" in result.stderr
    assert "Traceback" not in result.output
    assert not list((workspace / "submissions").glob("*nosuchsection*"))


# -- errors: one line, or a traceback with --debug -----------------------------------------


def test_config_error_is_one_line_exit_1_without_traceback(workspace: Path) -> None:
    break_config(workspace)
    result = run_module(workspace, "check")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "unknown key 'newsletter.nmae'" in lines[0]
    assert str(workspace / "config.toml") in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_config_file_is_one_line_exit_1(workspace: Path) -> None:
    result = run_module(workspace, "--config", "nowhere/config.toml", "build", "2022-02")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no such config file" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(workspace: Path) -> None:
    break_config(workspace)
    result = run_module(workspace, "--debug", "check")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr


def test_unknown_command_is_a_usage_error_exit_2(cli: Callable[..., Result]) -> None:
    result = cli("bulid")
    assert result.exit_code == 2
    assert "No such command 'bulid'" in result.stderr


# -- help --------------------------------------------------------------------------------


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group, as the command line names them (the lazy group's too)."""
    ctx = click.Context(group)
    paths = [prefix]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "newsflash")
def test_help_of_every_command_exits_0(path: tuple[str, ...], cli: Callable[..., Result]) -> None:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def test_core_commands_are_listed_in_the_main_help(cli: Callable[..., Result]) -> None:
    out = cli("--help").stdout
    for name in ("check", "build", "new"):
        assert name in out


def test_the_ledger_choices_of_the_commands_are_the_ledgers_that_exist() -> None:
    from newsflash.cli.common import LEDGER_CHOICES
    from newsflash.state.ledgers import LEDGER_FILES

    assert set(LEDGER_CHOICES) == set(LEDGER_FILES)


HEAVY = (
    "pydantic", "premailer", "mjml", "markdown_it", "sendgrid", "apscheduler", "email_validator",
    "httpx", "starlette", "tomlkit", "jinja2", "rich", "yaml", "nh3", "lxml", "cssutils",
    "requests", "sqlite3", "logging", "json", "asyncio", "zoneinfo", "tempfile", "signal",
)  # fmt: skip


def modules_loaded_by(*args: str) -> tuple[list[str], list[str]]:
    """The heavy libraries and the newsflash modules a fresh `newsflash ARGS` has imported
    by the time it exits."""
    code = (
        "import sys\nfrom newsflash.cli import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(sorted(m for m in sys.modules if m.startswith('newsflash')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    heavy, ours = out.stdout.strip().splitlines()[-2:]
    return ast.literal_eval(heavy), ast.literal_eval(ours)


def test_help_loads_no_command_module_config_model_renderer_or_terminal_library() -> None:
    """`newsflash --help` stays fast: click and newsflash/cli/__init__.py alone, the
    summaries coming from COMMANDS (issue 12's cold start; bench_build.py measures the time)."""
    heavy, ours = modules_loaded_by("--help")
    assert heavy == []
    assert set(ours) == {"newsflash", "newsflash.cli"}


def test_each_summary_in_the_command_table_is_its_commands_own_short_help() -> None:
    """A docstring edited without its summary in COMMANDS fails here, at every width click
    may shorten it to."""
    ctx = click.Context(main)
    for name, entry in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None
        stand_in = click.Command(name, help=entry.summary)
        for limit in range(1, 160):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (
                f"COMMANDS[{name!r}].summary differs from its command's help at width {limit}"
            )


@pytest.mark.parametrize("columns", ["40", "80", "100", "200"])
def test_the_top_level_help_is_what_click_prints_from_the_commands_themselves(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lazy listing, byte for byte, against a plain click group holding every command."""
    monkeypatch.setenv("COLUMNS", columns)
    ctx = click.Context(main)
    eager = click.Group(
        name=main.name,
        commands={n: c for n in COMMANDS if (c := main.get_command(ctx, n)) is not None},
        params=main.params,
        help=main.help,
        context_settings=main.context_settings,
    )
    lazy = CliRunner().invoke(main, ["--help"], prog_name="newsflash")
    plain = CliRunner().invoke(eager, ["--help"], prog_name="newsflash")
    assert lazy.exit_code == plain.exit_code == 0
    assert "Commands:" in lazy.stdout and "suppressions" in lazy.stdout
    assert lazy.stdout == plain.stdout


@pytest.mark.parametrize(
    "path", [p for p in command_paths() if p], ids=lambda p: " ".join(p)
)  # fmt: skip
def test_the_help_of_a_command_imports_its_own_module_and_no_other_command(
    path: tuple[str, ...],
) -> None:
    heavy, ours = modules_loaded_by(*path, "--help")
    module = f"newsflash.cli.{COMMANDS[path[0]].where.split(':')[0]}"
    uses = {"newsflash.cli.send": {"newsflash.cli.status"}}.get(module, set())
    assert heavy == []
    assert (
        set(ours)
        == {"newsflash", "newsflash.errors", "newsflash.cli", "newsflash.cli.common"}
        | {module}
        | uses
    )


def test_every_listed_command_is_defined_under_its_name() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert main.get_command(ctx, "bulid") is None


def test_a_cold_build_of_a_named_edition_loads_no_calendar_config_editor_or_other_command(
    workspace: Path,
) -> None:
    """`newsflash build 2022-02`, whose items point at February, needs no calendar: neither
    APScheduler nor asyncio loads, nor tomlkit, nor another command's module."""
    heavy, ours = modules_loaded_by("--config", str(workspace / "config.toml"), "build", "2022-02")
    assert not {"apscheduler", "asyncio", "tomlkit"} & set(heavy), heavy
    assert "pydantic" in heavy and "rich" in heavy  # the config's validation and the output
    assert not {m for m in ours if m.startswith("newsflash.cli.")} - {
        "newsflash.cli.common",
        "newsflash.cli.build",
    }
    assert "newsflash.schedule.timetable" not in ours


def test_a_build_far_from_every_item_still_reads_the_calendar_and_names_a_broken_send_job(
    cli: Callable[..., Result], workspace: Path
) -> None:
    """The calendar is skipped only when the far-edition warning cannot fire: an edition
    its item files point at needs no coming edition, any other one still asks the schedule,
    and a wrong cron field there is one line naming the job."""
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count('day = "1st tue"') == 1  # the send job's
    path.write_text(text.replace('day = "1st tue"', 'day = "1st tuesday"'), encoding="utf-8")

    far = cli("build", "2099-01")
    assert far.exit_code == 1
    assert "[schedule.send]" in far.stderr and "Traceback" not in far.output
    assert not (workspace / "build" / "2099-01").exists()

    near = cli("build", "2022-02")
    assert near.exit_code == 0, near.output
    assert (workspace / "build" / "2022-02" / "email.html").is_file()


@pytest.mark.parametrize(
    ("typed", "meant"), [("sned", "send"), ("statu", "status"), ("reprot", "report")]
)
def test_a_mistyped_command_is_answered_with_the_command_it_is_nearest(
    typed: str, meant: str
) -> None:
    """The lazy group imports no command to find a near name, but still suggests one."""
    result = CliRunner().invoke(main, [typed])
    assert result.exit_code == 2
    assert f"No such command '{typed}'. Did you mean '{meant}'?" in result.output


def test_a_command_nothing_is_near_is_refused_without_a_suggestion() -> None:
    result = CliRunner().invoke(main, ["zzzzzz"])
    assert result.exit_code == 2
    assert "No such command 'zzzzzz'." in result.output and "Did you mean" not in result.output
