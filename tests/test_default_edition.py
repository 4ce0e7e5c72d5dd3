"""One default edition for every command, one message for a bad id, warnings for odd months.

The default is the edition the schedule is working towards (schedule/which_edition.py): the
coming send's, or, within the grace period of a send that was due, that send's. Instants are
passed in, so nothing here depends on the day the suite runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from newsflash.cli import main
from newsflash.config import Config, load_config, parse_config
from newsflash.errors import EditionIdError
from newsflash.pipeline import load
from newsflash.schedule.which_edition import choose_edition, default_edition, edition_warnings

ROOT = Path(__file__).resolve().parent.parent
BRUSSELS = ZoneInfo("Europe/Brussels")
SAMPLE = (ROOT / "config.toml").read_text(encoding="utf-8")


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BRUSSELS)


def sample(replace: tuple[str, str] | None = None) -> Config:
    text = SAMPLE if replace is None else SAMPLE.replace(*replace)
    assert replace is None or text != SAMPLE
    return parse_config(text, ROOT / "config.toml")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(2026, 6, 17, 14, 0), "2026-07"),  # mid-month: the coming first Tuesday's
        (at(2026, 7, 7, 8, 59), "2026-07"),  # a minute before the send
        (at(2026, 7, 7, 10, 0), "2026-07"),  # an hour after: it may still go out (grace 6 h)
        (at(2026, 7, 7, 16, 0), "2026-08"),  # past the grace period: next month's
        (at(2026, 12, 31, 23, 30), "2027-01"),  # the year turns
    ],
)
def test_the_default_edition_is_the_one_the_schedule_works_towards(
    now: dt.datetime, expected: str
) -> None:
    assert default_edition(sample(), now) == expected


def test_without_a_send_job_the_default_is_next_months_edition() -> None:
    config = sample(("[schedule.send]", "[schedule.send]\nenabled = false"))
    assert default_edition(config, at(2026, 6, 1, 9, 0)) == "2026-07"


def test_a_newsletter_not_started_yet_defaults_to_edition_one() -> None:
    config = sample(('first_edition = "2022-02"', 'first_edition = "2027-03"'))
    assert default_edition(config, at(2026, 6, 17, 14, 0)) == "2027-03"


def test_a_named_edition_is_checked_and_kept() -> None:
    chosen = choose_edition(sample(), "2022-02", at(2026, 6, 17, 14, 0))
    assert (chosen.id, chosen.defaulted) == ("2022-02", False)
    with pytest.raises(EditionIdError, match="is not an edition"):
        choose_edition(sample(), "2022-2")
    with pytest.raises(EditionIdError, match="before the first edition"):
        choose_edition(sample(), "2021-01")


def test_an_edition_without_a_table_is_warned_about() -> None:
    (note,) = edition_warnings(sample(), "2022-03", [], at(2022, 2, 10, 12, 0))
    assert 'has no [editions."2022-03"] table' in note
    assert "newsflash edition new 2022-03" in note


def test_an_edition_far_from_the_calendar_and_every_item_is_warned_about(
    workspace: Path,
) -> None:
    config = load_config(workspace / "config.toml")
    items = load(config).items
    notes = edition_warnings(config, "2099-01", items, at(2026, 6, 17, 14, 0))
    assert any("far from the coming edition 2026-07" in n for n in notes)
    # the sample's own months are far from 2026 but its item files point at them
    assert edition_warnings(config, "2022-02", items, at(2026, 6, 17, 14, 0)) == []
    # and the coming one is near the calendar, items or not
    near = edition_warnings(config, "2026-08", [], at(2026, 6, 17, 14, 0))
    assert not any("far from" in n for n in near)


def cli(workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), *args])


@pytest.mark.parametrize("command", ["build", "preview", "approve", "send", "status"])
@pytest.mark.parametrize("bad", ["foo", "2022-13", "2022-3"])
def test_any_command_given_a_bad_edition_id_exits_1_with_one_message(
    workspace: Path, command: str, bad: str
) -> None:
    result = cli(workspace, command, bad)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [f"error: '{bad}' is not an edition; write YYYY-MM, e.g. 2022-02."]


def test_build_without_an_edition_names_the_coming_one(workspace: Path) -> None:
    result = cli(workspace, "build")
    assert result.exit_code == 0, result.output
    assert "edition 2026-07 (the coming one by the schedule" in result.output
    assert (workspace / "build" / "2026-07" / "email.html").is_file()


def test_an_edition_with_no_item_is_an_error_and_nothing_is_built(workspace: Path) -> None:
    for path in (workspace / "submissions").rglob("*.md"):
        if 'edition: "' not in path.read_text(encoding="utf-8"):
            path.unlink()  # leave only items pinned to the sample's own months
    result = cli(workspace, "build")
    assert result.exit_code == 1, result.output
    assert "edition 2026-07 has no items, so nothing was built" in result.output
    assert not (workspace / "build" / "2026-07").exists()


def test_build_far_from_the_calendar_and_every_item_is_warned_about(workspace: Path) -> None:
    result = cli(workspace, "build", "2099-01")
    output = " ".join(result.output.split())
    assert "far from the coming edition 2026-07" in output
    assert 'no [editions."2099-01"] table' in output


def test_build_of_a_month_without_its_table_warns_but_builds(workspace: Path) -> None:
    result = cli(workspace, "build", "2022-03")
    assert result.exit_code == 0, result.output
    assert 'no [editions."2022-03"] table' in " ".join(result.output.split())
    assert (workspace / "build" / "2022-03" / "email.html").is_file()


def test_status_without_an_edition_shows_the_coming_one(workspace: Path) -> None:
    result = cli(workspace, "status")
    assert result.exit_code == 0, result.output
    assert "edition 2026-07 (the coming one" in result.output
    assert "Edition 2026-07 has not been sent" in result.output


def complete(workspace: Path, monkeypatch: pytest.MonkeyPatch, words: str) -> list[str]:
    """What bash would offer after `words` (click's own completion protocol)."""
    monkeypatch.chdir(workspace)
    env = {
        "_NEWSFLASH_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    result = CliRunner().invoke(main, [], env=env, prog_name="newsflash")
    return [line.split(",", 1)[1] for line in result.output.splitlines() if line]


def test_completion_offers_the_sections_for_new(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert complete(workspace, monkeypatch, "newsflash new ") == [
        "alliance",
        "wg1",
        "wg2",
        "battery",
        "projects",
        "events",
    ]
    assert complete(workspace, monkeypatch, "newsflash new w") == ["wg1", "wg2"]


@pytest.mark.parametrize("command", ["build", "preview", "approve", "send", "status"])
def test_completion_offers_the_coming_edition_then_the_configured_ones(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    assert complete(workspace, monkeypatch, f"newsflash {command} ") == ["2026-07", "2022-02"]
    assert complete(workspace, monkeypatch, f"newsflash {command} 2022") == ["2022-02"]


def test_completion_in_a_folder_without_config_offers_nothing_and_prints_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert complete(tmp_path, monkeypatch, "newsflash build ") == []
    assert complete(tmp_path, monkeypatch, "newsflash new ") == []
