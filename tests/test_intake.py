"""Intake: a file dropped into the watched submissions/ gets its contact a notice in seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from calendar_helpers import body, notices, set_schedule, wait_for

from newsflash.config import Config
from newsflash.items import parse_item
from newsflash.schedule.intake import Intake, check_file

GOOD = """---
title: Partners meet in Vaasa
section: battery
date: 2022-02-21
status: ready
contact: lena@example.org
---
The Battery subgroup met in Vaasa.
"""

BROKEN = """---
title: Broken item
section: batteries
date: 2022-02-30
image: http://example.org/x.png
contact: omar@example.org
---
Text.
"""


@pytest.fixture
def config(workspace: Path) -> Config:
    return set_schedule(workspace, jobs={"send": {"day": "1st tue", "hour": 9}})


@pytest.fixture
def intake(config: Config) -> Iterator[Intake]:
    with Intake(config) as watcher:
        time.sleep(0.2)  # let the observer's inotify watches settle
        yield watcher


def notice_to(config: Config, address: str) -> list[str]:
    return [f"{m['Subject']}\n{body(m)}" for m in notices(config) if m["To"] == address]


def log_lines(config: Config) -> list[str]:
    path = config.state_dir / "intake.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_a_good_and_a_broken_file_each_get_the_right_notice_within_seconds(
    config: Config, intake: Intake
) -> None:
    started = time.monotonic()
    (config.submissions_dir / "vaasa.md").write_text(GOOD, encoding="utf-8")
    (config.submissions_dir / "2022-02" / "broken.md").write_text(BROKEN, encoding="utf-8")
    wait_for(lambda: len(notices(config)) >= 2, timeout=5)
    assert time.monotonic() - started < 5

    (good,) = notice_to(config, "lena@example.org")
    assert "vaasa.md is received" in good and "is valid" in good
    assert "section: battery" in good
    # a page they can open, which `newsflash archive` writes (site/contributors/index.html)
    assert "How to write an item file: https://newsflash.example.org/contributors/" in good
    assert "docs/contributors.md" not in good

    (bad,) = notice_to(config, "omar@example.org")
    assert "2022-02/broken.md needs changes" in bad
    _, problems = parse_item(BROKEN.encode(), "2022-02/broken.md", config.section_keys)
    assert problems  # the same messages as `newsflash check`, word for word
    for p in problems:
        assert str(p) in bad

    lines = log_lines(config)
    assert len(lines) == 2
    assert any("vaasa.md  ok  (notified lena@example.org)" in line for line in lines)
    errors = sum(p.severity == "error" for p in problems)
    assert any(
        f"2022-02/broken.md  {errors} error(s)" in line
        and "notified omar@example.org" in line
        and str(problems[0]) in line
        for line in lines
    )


def test_a_file_still_open_through_a_long_pause_is_judged_once_whole(
    config: Config, intake: Intake
) -> None:
    """The writer stalls longer than the settle time, the file still open: it waits for the
    close (inotify's close-after-write) and is judged once, whole."""
    path = config.submissions_dir / "slow.md"
    half = len(GOOD) // 2
    with path.open("w", encoding="utf-8") as f:
        f.write(GOOD[:half])  # front matter cut in the middle: broken if judged now
        f.flush()
        time.sleep(intake.settle + 0.5)
        f.write(GOOD[half:])
    wait_for(lambda: notices(config), timeout=5)
    time.sleep(1.0)  # a second verdict would arrive in this time
    (only,) = notices(config)
    assert "slow.md is received" in str(only["Subject"])
    assert len(log_lines(config)) == 1


def test_a_file_too_broken_to_parse_still_reaches_its_contact(
    config: Config, intake: Intake
) -> None:
    data = "---\ntitle: No closing line\ncontact: ida@example.org\nText, no closing '---'.\n"
    (config.submissions_dir / "no-end.md").write_text(data, encoding="utf-8")
    wait_for(lambda: notice_to(config, "ida@example.org"), timeout=5)
    (text,) = notice_to(config, "ida@example.org")
    item, problems = parse_item(data.encode(), "no-end.md", config.section_keys)
    assert item is None and problems
    assert all(str(p) in text.replace("\r\n", "\n") for p in problems)


def test_a_file_without_contact_is_only_logged(config: Config, intake: Intake) -> None:
    (config.submissions_dir / "anon.md").write_text(
        GOOD.replace("contact: lena@example.org\n", ""), encoding="utf-8"
    )
    wait_for(lambda: log_lines(config), timeout=5)
    assert "anon.md  ok  (no contact to notify)" in log_lines(config)[0]
    assert not notices(config)


def test_a_file_moved_in_is_checked_and_other_files_are_not(config: Config, intake: Intake) -> None:
    outside = config.root / "draft.md"
    outside.write_text(GOOD, encoding="utf-8")
    (config.submissions_dir / "notes.txt").write_text("not an item", encoding="utf-8")
    (config.submissions_dir / ".hidden.md").write_text(GOOD, encoding="utf-8")
    outside.rename(config.submissions_dir / "moved.md")
    wait_for(lambda: notices(config), timeout=5)
    time.sleep(0.8)
    (only,) = notices(config)
    assert "moved.md is received" in str(only["Subject"])


def test_saving_the_same_content_again_sends_no_second_notice(
    config: Config, intake: Intake
) -> None:
    path = config.submissions_dir / "same.md"
    path.write_text(GOOD, encoding="utf-8")
    wait_for(lambda: notices(config), timeout=5)
    path.write_text(GOOD, encoding="utf-8")
    time.sleep(1.2)
    assert len(notices(config)) == 1
    path.write_text(GOOD.replace("Vaasa.", "Vaasa in February."), encoding="utf-8")
    wait_for(lambda: len(notices(config)) == 2, timeout=5)


def test_files_that_arrived_while_the_scheduler_was_down_are_checked_at_start(
    config: Config,
) -> None:
    """Regression (issue 13): a file dropped while the scheduler was stopped was never
    checked, and its contributor never heard, until someone saved it again."""
    with Intake(config):
        time.sleep(0.2)  # the first start: the files already there are taken as they are
    assert notices(config) == []
    (config.submissions_dir / "vaasa.md").write_text(GOOD, encoding="utf-8")  # while down
    (config.submissions_dir / "2022-02" / "broken.md").write_text(BROKEN, encoding="utf-8")

    with Intake(config):
        wait_for(lambda: len(notices(config)) >= 2, timeout=5)
        time.sleep(0.5)  # a notice for a file that did not change would show up here

    assert len(notice_to(config, "lena@example.org")) == 1
    assert len(notice_to(config, "omar@example.org")) == 1
    assert len(notices(config)) == 2
    with Intake(config):  # started again with nothing new: nobody hears twice
        time.sleep(0.8)
    assert len(notices(config)) == 2


def test_a_file_changed_while_the_scheduler_was_down_is_checked_again_at_start(
    config: Config, intake: Intake
) -> None:
    path = config.submissions_dir / "vaasa.md"
    path.write_text(GOOD, encoding="utf-8")
    wait_for(lambda: notices(config), timeout=5)
    intake.stop()
    path.write_text(GOOD.replace("section: battery", "section: batteries"), encoding="utf-8")

    intake.start()
    wait_for(lambda: len(notices(config)) >= 2, timeout=5)

    assert "needs changes" in notice_to(config, "lena@example.org")[-1]


def test_the_contact_fallback_reads_a_plain_contact_line() -> None:
    verdict = check_file(b"contact: 'x@example.org'\nno front matter", "x.md", ("wg1",))
    assert verdict.contact == "x@example.org" and not verdict.ok
    assert check_file(b"\xff\xfe broken", "y.md", ("wg1",)).contact == ""


def test_a_file_with_the_title_of_another_item_needs_changes_as_check_says(
    config: Config, intake: Intake
) -> None:
    from newsflash.pipeline import load

    other = next(i for i in load(config).items if i.status == "ready" and i.edition is None)
    dup = GOOD.replace("title: Partners meet in Vaasa", f"title: '{other.title}'")
    (config.submissions_dir / "dup.md").write_text(dup, encoding="utf-8")
    wait_for(lambda: notices(config), timeout=5)
    (text,) = notice_to(config, "lena@example.org")
    assert "dup.md needs changes" in text
    assert f"dup.md: error: title: same title as {other.key}; two items in one edition" in text
