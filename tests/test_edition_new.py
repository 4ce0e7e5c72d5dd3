"""`newsflash edition new YYYY-MM`: the month's table added to config.toml, nothing else touched.

The file is the secretariat's: its comments, blank lines, key order and quoting survive, an
existing table is never overwritten, and every refusal leaves the file byte for byte as it was.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsflash.cli import main
from newsflash.config import load_config
from newsflash.config_text import config_text


def run(workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), *args])


def added_lines(before: str, after: str) -> list[str]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    assert not [d for d in diff if d.startswith("- ")], "a line of the file was changed"
    return [d[2:] for d in diff if d.startswith("+ ")]


def test_edition_new_adds_the_table_and_keeps_every_comment_and_the_layout(
    workspace: Path,
) -> None:
    path = workspace / "config.toml"
    before = path.read_text(encoding="utf-8")
    result = run(workspace, "edition", "new", "2022-04", "--title", "April’s “news”")
    assert result.exit_code == 0, result.output
    after = path.read_text(encoding="utf-8")
    assert added_lines(before, after) == [
        '[editions."2022-04"]',
        'title = "April’s “news”"',
        'preheader = ""',
        'editorial = ""',
        "",
    ]
    # it sits with the other editions, before the table that followed them
    assert after.index('[editions."2022-04"]') < after.index("[call_to_action]")
    settings = load_config(path).model.editions["2022-04"]
    assert settings.title == "April’s “news”"


def test_edition_new_without_a_title_names_the_month(workspace: Path) -> None:
    assert run(workspace, "edition", "new", "2022-05").exit_code == 0
    assert load_config(workspace / "config.toml").model.editions["2022-05"].title == "May 2022"


def test_edition_new_in_a_new_workspace_adds_the_first_real_editions_table(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text("2026-07"), encoding="utf-8")
    assert load_config(path).model.editions == {}
    assert run(tmp_path, "edition", "new", "2026-07", "--preheader", "Hello").exit_code == 0
    assert load_config(path).model.editions["2026-07"].preheader == "Hello"
    assert path.read_text(encoding="utf-8").startswith(config_text("2026-07"))


def test_edition_new_refuses_an_edition_that_has_a_table(workspace: Path) -> None:
    path = workspace / "config.toml"
    before = path.read_bytes()
    result = run(workspace, "edition", "new", "2022-02", "--title", "Overwritten")
    assert result.exit_code == 1
    assert '[editions."2022-02"] exists already' in result.output
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "bad",
    [
        "foo",
        "2022-13",
        "2022-00",
        "2022-3",
        "22-03",
        "2022/03",
        "2022-03-01",
        " 2022-03",
        "2022-03 ",
        "2022-03\n",
        "2022‐03",  # a Unicode hyphen, as a word processor writes it
        "２０２２-03",  # full-width digits
        "../2022-03",
        "",
        "2021-12",  # before edition No. 1 (2022-02)
    ],
)
def test_a_bad_edition_id_is_one_message_and_the_file_unchanged(workspace: Path, bad: str) -> None:
    path = workspace / "config.toml"
    before = path.read_bytes()
    result = run(workspace, "edition", "new", bad)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    assert path.read_bytes() == before


def test_a_title_that_config_toml_would_refuse_is_refused_before_writing(
    workspace: Path,
) -> None:
    path = workspace / "config.toml"
    before = path.read_bytes()
    result = run(workspace, "edition", "new", "2022-04", "--title", "Two\nlines")
    assert result.exit_code == 1 and "title" in result.output
    assert path.read_bytes() == before


def test_a_broken_config_is_named_and_not_edited(workspace: Path) -> None:
    path = workspace / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n[oops\n", encoding="utf-8")
    before = path.read_bytes()
    result = run(workspace, "edition", "new", "2022-04")
    assert result.exit_code == 1 and "not valid TOML" in result.output
    assert path.read_bytes() == before


def test_inline_editions_are_refused_with_the_way_to_write_them(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    inline = 'editions = { "2026-07" = { title = "July" } }\n'
    path.write_text(inline + config_text("2026-07"), encoding="utf-8")
    before = path.read_bytes()
    result = run(tmp_path, "edition", "new", "2026-08")
    assert result.exit_code == 1 and "its own" in result.output, result.output
    assert path.read_bytes() == before
