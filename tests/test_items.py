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
from conftest import own_template

from newsflash.checks import run_checks
from newsflash.config import load_config
from newsflash.content_rules import CONTROL_CHARS
from newsflash.errors import BuildError
from newsflash.item_fields import FIELDS
from newsflash.items import Item, Problem, item_files, load_items, parse_item
from newsflash.pipeline import build_edition, check_items, item_faults, write_build

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


def test_values_in_curly_quotes_are_read_as_if_the_quotes_were_straight() -> None:
    item, _ = parse_fixture("values_in_curly_quotes.md")
    assert item is not None
    assert (item.title, item.section, item.date, item.status) == (
        "A title",
        "wg1",
        dt.date(2022, 1, 17),
        "ready",
    )
    assert item.author == "“Quoted” on purpose"  # in straight quotes: the writer's own


def test_item_sha256_is_of_the_file_bytes() -> None:
    import hashlib

    item, _ = parse_item(VALID.encode(), "a.md", SECTIONS)
    assert item is not None
    assert item.sha256 == hashlib.sha256(VALID.encode()).hexdigest()


# check and build agree: an item `check` passes builds; one the email cannot carry is
# reported by check against its file and left out by the build, never stopping the others.


def _build_and_write(workspace: Path) -> tuple[Any, Path]:
    config = load_config(workspace / "config.toml")
    build = build_edition(config, "2022-02")
    return build, write_build(config, build)


@pytest.mark.parametrize(
    "name", ["control_characters_in_body.md", "control_character_escapes_in_fields.md"]
)
def test_an_item_with_control_characters_passes_check_and_builds_with_its_text(
    workspace: Path, name: str
) -> None:
    """Regression (issue 8): these passed check, then stopped the edition in MJML."""
    shutil.copy(FIXTURES / name, workspace / "submissions" / name)
    config = load_config(workspace / "config.toml")
    assert check_items(config).errors == ()

    build, out = _build_and_write(workspace)

    assert name in {i.key for i in build.edition.items}
    html = (out / "email.html").read_text(encoding="utf-8")
    assert CONTROL_CHARS.search(html) is None
    assert CONTROL_CHARS.search((out / "email.txt").read_text(encoding="utf-8")) is None
    if name == "control_characters_in_body.md":
        assert "Line onestill one." in html
    else:
        assert "Title with  a vertical tab" in html and 'alt="A hall"' in html


@pytest.mark.parametrize(
    "name", ["mailto_without_address_in_link_field.md", "mailto_without_address_in_body.md"]
)
def test_a_mailto_link_without_an_address_is_refused_by_check_and_leaves_the_build_whole(
    workspace: Path, name: str
) -> None:
    """Regression (issue 8): 'link: mailto:wg1' passed check and failed the build's link check."""
    shutil.copy(FIXTURES / name, workspace / "submissions" / name)
    config = load_config(workspace / "config.toml")
    assert [p.path for p in check_items(config).errors] == [name]

    build, _ = _build_and_write(workspace)

    assert build.email.ok
    assert name in {lo.key for lo in build.edition.left_out}
    assert len(build.edition.items) == 4  # the sample's items for 2022-02, all there


def test_the_build_link_check_refuses_what_the_item_check_refuses() -> None:
    for href in ("mailto:wg1", "mailto:@example.org", "https://example.org/a b", "https://x"):
        html = f'<a href="{href}">x</a>'
        assert [
            c.level for c in run_checks(html, warn_kb=90, limit_kb=102) if c.name == "links"
        ] == ["error"], href
    html = '<a href="mailto:wg1@example.org">x</a><a href="#item-a">toc</a>'
    assert [c.level for c in run_checks(html, warn_kb=90, limit_kb=102)] == ["ok", "ok", "ok"]


def test_an_item_too_large_for_any_email_is_reported_by_check_and_left_out_of_the_build(
    workspace: Path,
) -> None:
    giant = workspace / "submissions" / "giant_item.md"
    giant.write_text(
        "---\ntitle: The whole report\nsection: wg2\ndate: 2022-02-01\n---\n"
        + "A long paragraph of the report. " * 4000,
        encoding="utf-8",
    )
    config = load_config(workspace / "config.toml")
    errors = check_items(config).errors
    assert [(p.path, p.line) for p in errors] == [("giant_item.md", None)]
    assert "this item alone makes the email" in errors[0].message
    assert "Shorten the text" in errors[0].message

    build, out = _build_and_write(workspace)

    reasons = {lo.key: lo.reason for lo in build.edition.left_out}
    assert reasons["giant_item.md"].startswith("invalid: this item alone makes the email")
    assert len(build.edition.items) == 4 and build.email.ok
    assert (out / "email.html").stat().st_size < 102 * 1024


def test_items_too_large_only_together_are_not_blamed_and_the_size_check_still_refuses(
    workspace: Path,
) -> None:
    for n in range(12):
        (workspace / "submissions" / f"long_{n}.md").write_text(
            f"---\ntitle: Long item {n}\nsection: wg1\ndate: 2022-02-01\n---\n"
            + "Text of a long item, none too long alone. " * 250,
            encoding="utf-8",
        )
    config = load_config(workspace / "config.toml")
    assert check_items(config).errors == ()
    build = build_edition(config, "2022-02")
    assert len(build.edition.items) == 16
    assert [c.name for c in build.email.checks if c.level == "error"] == ["size"]


def test_a_template_fault_blames_no_item_and_still_stops_the_build(workspace: Path) -> None:
    own_template(workspace, "partials/footer.mjml.j2", "<mj-text>\x01</mj-text>\n")
    config = load_config(workspace / "config.toml")
    items = load_items(config.submissions_dir, config.section_keys).items

    assert item_faults(config, items, "2022-02") == []
    with pytest.raises(BuildError, match="MJML could not be rendered"):
        build_edition(config, "2022-02")


def test_an_unchanged_file_comes_from_the_parse_cache_and_a_changed_one_is_parsed_again() -> None:
    from newsflash.items import _parse_cached

    text = b"---\ntitle: Cached\nsection: alliance\ndate: 2022-02-01\n---\nBody one.\n"
    sections = ("alliance",)
    first, problems = parse_item(text, "cached.md", sections)
    problems.append(Problem("cached.md", "a caller's own note"))  # the cache keeps its own copy
    hits = _parse_cached.cache_info().hits
    again, problems_again = parse_item(text, "cached.md", sections)
    assert _parse_cached.cache_info().hits == hits + 1
    assert again is first and problems_again == []
    edited, _ = parse_item(text.replace(b"Body one.", b"Body two."), "cached.md", sections)
    assert edited is not None and first is not None
    assert "Body two." in edited.body_text and edited.sha256 != first.sha256
    other_sections, found = parse_item(text, "cached.md", ("projects",))
    assert other_sections is None and any(p.field == "section" for p in found)
