"""Item files: every broken file gives exactly its expected problems, and never a traceback.

The broken files live in tests/fixtures/items/, named after what is wrong with them; the
problems each must give are in tests/fixtures/items/expected.toml.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from newsflash.config import load_config
from newsflash.items import FIELDS, Item, Problem, item_files, load_items, parse_item

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "items"
EXPECTED: dict[str, list[dict[str, Any]]] = tomllib.loads(
    (FIXTURES / "expected.toml").read_text(encoding="utf-8")
)
SECTIONS = load_config(ROOT / "config.toml").section_keys

VALID = """---
title: Working Group 1 holds its first meeting
section: wg1
date: 2022-01-17
---
The group met on 17 January.
"""


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.md"))


def parse_fixture(name: str) -> tuple[Item | None, list[Problem]]:
    return parse_item((FIXTURES / name).read_bytes(), name, SECTIONS)


def test_every_broken_item_file_has_its_expected_problems_listed() -> None:
    assert fixture_names() == sorted(EXPECTED), "expected.toml and the .md files must match"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_item_file_yields_exactly_the_expected_problems(name: str) -> None:
    item, problems = parse_fixture(name)
    expected = EXPECTED[name]
    got = [(p.field, p.line, p.severity) for p in problems]
    want = [(e.get("field"), e.get("line"), e.get("severity", "error")) for e in expected]
    assert got == want, "\n".join(str(p) for p in problems)
    for problem, exp in zip(problems, expected, strict=True):
        assert exp["contains"] in problem.message, str(problem)
        assert problem.path == name
    if any(p.severity == "error" for p in problems):
        assert item is None
    else:
        assert item is not None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_problem_line_names_file_line_and_field(name: str) -> None:
    _, problems = parse_fixture(name)
    for p in problems:
        text = str(p)
        assert text.startswith(name + (f":{p.line}: " if p.line else ": "))
        assert f"{p.severity}: " in text
        if p.field:
            assert f"{p.field}: " in text


def test_sample_submissions_are_all_valid() -> None:
    folder = ROOT / "submissions"
    loaded = load_items(folder, SECTIONS)
    assert loaded.problems == ()
    assert loaded.failed == ()
    assert len(loaded.items) == len(item_files(folder)) == 6


def test_load_items_reports_every_problem_of_every_file_in_one_run(tmp_path: Path) -> None:
    folder = tmp_path / "submissions"
    shutil.copytree(FIXTURES, folder / "broken", ignore=shutil.ignore_patterns("*.toml"))
    (folder / "good.md").write_text(VALID, encoding="utf-8")

    loaded = load_items(folder, SECTIONS)

    for name, expected in EXPECTED.items():
        key = f"broken/{name}"
        found = [p for p in loaded.problems if p.path == key]
        assert len(found) == len(expected), key
        if any(e.get("severity", "error") == "error" for e in expected):
            assert key in loaded.failed
    assert sum(len(e) for e in EXPECTED.values()) == len(loaded.problems)
    keys = {i.key for i in loaded.items}
    assert "good.md" in keys
    assert "broken/no_text_and_no_summary.md" in keys  # a warning keeps the item


def test_file_that_is_not_markdown_is_a_warning_and_readme_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a note", encoding="utf-8")
    (tmp_path / "README.md").write_text("# How to write items", encoding="utf-8")
    (tmp_path / "item.md").write_text(VALID, encoding="utf-8")
    (tmp_path / ".hidden.md").write_text("not an item", encoding="utf-8")
    (tmp_path / "_templates").mkdir()
    (tmp_path / "_templates" / "draft.md").write_text("not an item", encoding="utf-8")

    loaded = load_items(tmp_path, SECTIONS)

    assert [i.key for i in loaded.items] == ["item.md"]
    assert [(p.path, p.severity) for p in loaded.problems] == [("notes.txt", "warning")]
    assert "ignored" in loaded.problems[0].message
    assert loaded.errors == ()


def test_missing_submissions_folder_gives_no_items_and_no_exception(tmp_path: Path) -> None:
    loaded = load_items(tmp_path / "nowhere", SECTIONS)
    assert (loaded.items, loaded.problems, loaded.failed) == ((), (), ())


def test_item_with_every_field_is_parsed_into_an_item() -> None:
    text = """---
title: "The agenda ahead: DRIVES concludes"
section: projects
date: 2022-02-15
author: ASA Secretariat
organisation: DRIVES project
summary: DRIVES ends in March 2022.
link: https://www.project-drives.eu/
link_text: Programme
image: https://example.org/conference.jpg
image_alt: The conference hall
order: 3
edition: "2022-02"
status: ready
contact: Projects@Example.org
---
The **agenda** on skills remains [full](https://example.org/agenda).
"""
    item, problems = parse_item(text.encode(), "2022-02/agenda.md", SECTIONS)
    assert problems == []
    assert item is not None
    assert item.title == "The agenda ahead: DRIVES concludes"
    assert (item.section, item.date, item.order) == ("projects", dt.date(2022, 2, 15), 3)
    assert (item.edition, item.status) == ("2022-02", "ready")
    assert (item.link, item.link_text) == ("https://www.project-drives.eu/", "Programme")
    assert (item.image, item.image_alt) == (
        "https://example.org/conference.jpg",
        "The conference hall",
    )
    assert item.contact == "Projects@example.org"  # the domain is normalised
    assert "<strong>agenda</strong>" in item.body_html
    assert 'href="https://example.org/agenda"' in item.body_html
    assert "full <https://example.org/agenda>" in item.body_text
    assert item.anchor.startswith("item-agenda-")


def test_defaults_of_optional_fields() -> None:
    item, problems = parse_item(VALID.encode(), "a.md", SECTIONS)
    assert problems == []
    assert item is not None
    assert (item.status, item.order, item.edition, item.link_text) == (
        "ready",
        100,
        None,
        "Read more",
    )


def test_utf8_bom_and_windows_line_endings_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + VALID.replace("\n", "\r\n").encode()
    item, problems = parse_item(data, "a.md", SECTIONS)
    assert problems == []
    assert item is not None
    assert item.title == "Working Group 1 holds its first meeting"


def test_summary_alone_is_enough_text() -> None:
    text = VALID.split("---\n")[1]
    data = f"---\n{text}summary: Only a summary.\n---\n".encode()
    item, problems = parse_item(data, "a.md", SECTIONS)
    assert item is not None
    assert problems == []


def test_unknown_field_without_a_close_match_lists_the_known_fields() -> None:
    data = VALID.replace("date:", "zzz: 1\ndate:").encode()
    _, problems = parse_item(data, "a.md", SECTIONS)
    assert [p.field for p in problems] == ["zzz"]
    assert all(f in problems[0].message for f in FIELDS)


def test_item_sha256_is_of_the_file_bytes() -> None:
    import hashlib

    item, _ = parse_item(VALID.encode(), "a.md", SECTIONS)
    assert item is not None
    assert item.sha256 == hashlib.sha256(VALID.encode()).hexdigest()
