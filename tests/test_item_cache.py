"""The item cache (newsflash/item_cache.py): a kept parse is exactly what parsing the file
gives, and whatever the cache cannot vouch for is a parse, never an error and never another
result.

Every test has its own cache folder (conftest's XDG_CACHE_HOME). A hit is told from a miss by
whether the real parser ran (counted), or, across processes, by what was imported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from newsflash import idle_writes, item_cache, item_parser, items, user_cache
from newsflash.config import load_config
from newsflash.items import Item, Problem, load_items, parse_item

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "items"
SECTIONS = load_config(ROOT / "config.toml").section_keys
GOOD = (ROOT / "submissions" / "2022-02" / "agenda-drives-albatts.md").read_bytes()
KEY = "2022-02/agenda-drives-albatts.md"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys the real parser was run on: empty after a call, a hit. The in-memory cache
    starts empty, as in a fresh process."""
    seen: list[str] = []
    real = item_parser.parse

    def counted(data: bytes, key: str, sections: Any) -> Any:
        seen.append(key)
        return real(data, key, sections)

    monkeypatch.setattr(item_parser, "parse", counted)
    items._parse_cached.cache_clear()
    yield seen
    items._parse_cached.cache_clear()


def fields(parsed: tuple[Item | None, Any]) -> list[object]:
    """Every field of the item and its problems, with its type (the anchor too)."""
    item, problems = parsed
    objs = [o for o in (item, *problems) if o is not None]
    return [
        (type(o), [(type(getattr(o, f.name)), getattr(o, f.name)) for f in dataclasses.fields(o)])
        for o in objs
    ]


def sample_files() -> list[tuple[bytes, str]]:
    found = [(p.read_bytes(), p.name) for p in sorted(FIXTURES.glob("*.md"))]
    return found + [(p.read_bytes(), p.name) for p in sorted((ROOT / "submissions").rglob("*.md"))]


def kept_files() -> list[Path]:
    folder = item_cache.folder()
    assert folder is not None
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_every_kept_parse_is_exactly_the_parse_and_is_read_without_parsing(
    parses: list[str],
) -> None:
    """The sample's items and every broken fixture (problems only, or an item and warnings):
    the second time, in a fresh process's state, none is parsed and each is the same."""
    files = sample_files()
    assert len(files) > 20
    first = [parse_item(data, key, SECTIONS) for data, key in files]
    assert parses == [key for _, key in files]
    assert any(item is None for item, _ in first) and any(p for _, p in first)
    idle_writes.flush()  # the writes the parses left for when the process is quiet
    items._parse_cached.cache_clear()
    del parses[:]
    again = [parse_item(data, key, SECTIONS) for data, key in files]
    assert parses == []
    for (data, key), a, b in zip(files, first, again, strict=True):
        assert fields((a[0], tuple(a[1]))) == fields((b[0], tuple(b[1]))), key
        assert item_parser.parse(data, key, SECTIONS) == (b[0], b[1]), key


def test_an_edit_another_key_other_sections_or_other_code_is_parsed_again(
    parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parse_item(GOOD, KEY, SECTIONS)
    cases: list[tuple[bytes, str, tuple[str, ...]]] = [
        (GOOD.replace(b"DRIVES", b"DRIVEN"), KEY, SECTIONS),
        (GOOD, "2022-02/renamed.md", SECTIONS),
        (GOOD, KEY, (*SECTIONS, "new-section")),
    ]
    for data, key, sections in cases:
        items._parse_cached.cache_clear()
        del parses[:]
        item, _ = parse_item(data, key, sections)
        assert parses == [key]
        assert item is not None and item.key == key
    monkeypatch.setattr(item_cache, "package_fingerprint", lambda: "a newer newsflash")
    items._parse_cached.cache_clear()
    del parses[:]
    parse_item(GOOD, KEY, SECTIONS)
    assert parses == [KEY]


def test_a_cold_load_of_kept_items_imports_no_yaml_markdown_or_email_validator(
    tmp_path: Path,
) -> None:
    """Across processes, as `newsflash build` runs: the first load parses and keeps, the
    second reads the same items with none of the parser's libraries imported."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from newsflash.items import load_items\n"
        f"loaded = load_items(Path({str(ROOT / 'submissions')!r}), {SECTIONS!r})\n"
        "libs = ('yaml', 'markdown_it', 'nh3', 'email_validator', 'newsflash.item_parser')\n"
        "print(json.dumps({'items': [repr(i) + i.anchor for i in loaded.items],\n"
        "    'problems': [str(p) for p in loaded.problems],\n"
        "    'imported': [m for m in libs if m in sys.modules]}))\n"
    )

    def run() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    first, second = run(), run()
    parser = ["yaml", "markdown_it", "nh3", "email_validator", "newsflash.item_parser"]
    assert first["imported"] == parser
    assert second["imported"] == []
    assert second["items"] == first["items"] and len(first["items"]) == 6
    assert second["problems"] == first["problems"]


def entry_file() -> Path:
    """Parse GOOD once through the cache and return the file it was kept in."""
    items._parse_cached.cache_clear()
    parse_item(GOOD, KEY, SECTIONS)
    idle_writes.flush()
    folder = item_cache.folder()
    assert folder is not None
    file = folder / f"{item_cache.entry_key(GOOD, KEY, SECTIONS)}.json"
    assert file in kept_files()
    return file


def read_doc(file: Path) -> dict[str, Any]:
    """The JSON of a kept file, past the sha256 it is kept behind."""
    data = file.read_bytes()
    digest, body = data[:32], data[32:]
    assert digest == hashlib.sha256(body).digest()
    doc: dict[str, Any] = json.loads(body)
    return doc


def write_doc(file: Path, doc: dict[str, Any]) -> None:
    """Keep `doc` as the cache would, its sha256 right, so only its content is in doubt."""
    write_doc_text(file, json.dumps(doc))


def write_doc_text(file: Path, text: str) -> None:
    file.write_bytes(hashlib.sha256(text.encode()).digest() + text.encode())


def uncertain_files() -> Iterator[tuple[str, Callable[[Path], None]]]:
    """(what, how to spoil the kept file of GOOD) for each case the cache cannot trust."""

    def put(data: bytes) -> Callable[[Path], None]:
        return lambda file: file.write_bytes(data)

    def edited(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
        def spoil(file: Path) -> None:
            doc = read_doc(file)
            change(doc)
            write_doc(file, doc)

        return spoil

    def item_field(name: str, value: object) -> Callable[[dict[str, Any]], None]:
        return lambda doc: doc["item"].__setitem__(name, value)

    yield "empty", put(b"")
    yield "random bytes", put(os.urandom(512))
    yield "not JSON", put(b"\x80\x04\x95 a pickle, say")
    yield "truncated", lambda file: file.write_bytes(file.read_bytes()[:-40])
    yield "a list", put(b"[1, 2, 3]")
    yield "an older format", edited(lambda doc: doc.__setitem__("format", 0))
    yield "a foreign key", edited(lambda doc: doc.__setitem__("key", "0" * 64))
    yield "no problems list", edited(lambda doc: doc.__setitem__("problems", "none"))
    yield "a date that is none", edited(item_field("date", "2022-02-30"))
    yield "a date as a number", edited(item_field("date", 20220201))
    yield "an order as text", edited(item_field("order", "1"))
    yield "an order as a boolean", edited(item_field("order", True))
    yield "a title as a list", edited(item_field("title", ["a"]))
    yield "a field unknown", edited(item_field("script", "x"))
    yield "a field missing", edited(lambda doc: doc["item"].pop("title"))
    yield "an item as a list", edited(lambda doc: doc.__setitem__("item", [1]))
    yield "a problem as text", edited(lambda doc: doc.__setitem__("problems", ["x"]))
    yield (
        "a severity unknown",
        edited(
            lambda doc: doc.__setitem__(
                "problems",
                [{"path": KEY, "message": "m", "field": None, "line": 1, "severity": "x"}],
            )
        ),
    )
    yield "too deep", lambda file: write_doc_text(file, "[" * 100_000)
    yield (
        "edited, still JSON, its sha256 not",
        lambda file: file.write_bytes(file.read_bytes().replace(b"DRIVES", b"DRIVEN")),
    )
    yield (
        "JSON with no sha256 before it",
        lambda file: file.write_bytes(json.dumps(read_doc(file)).encode()),
    )

    def writable_by_others(file: Path) -> None:
        file.chmod(0o666)

    def a_folder(file: Path) -> None:
        file.unlink()
        file.mkdir()

    yield "writable by others", writable_by_others
    yield "a folder in its place", a_folder


@pytest.mark.parametrize(
    ("what", "spoil"), [pytest.param(w, s, id=w) for w, s in uncertain_files()]
)
def test_every_uncertain_kept_file_is_a_parse_never_an_error(
    what: str, spoil: Callable[[Path], None], parses: list[str]
) -> None:
    file = entry_file()
    expected = item_parser.parse(GOOD, KEY, SECTIONS)
    spoil(file)
    items._parse_cached.cache_clear()
    del parses[:]
    item, problems = parse_item(GOOD, KEY, SECTIONS)
    assert parses == [KEY], what
    assert fields((item, tuple(problems))) == fields((expected[0], tuple(expected[1]))), what


def test_a_kept_entry_with_the_right_key_and_types_is_trusted(parses: list[str]) -> None:
    """What makes that safe is the folder rule, not the content: the cache does answer from
    the file (so the tests above see a parse only because each file was spoiled)."""
    file = entry_file()
    doc = read_doc(file)
    doc["item"]["title"] = "Kept, not parsed"
    write_doc(file, doc)
    items._parse_cached.cache_clear()
    del parses[:]
    item, _ = parse_item(GOOD, KEY, SECTIONS)
    assert parses == [] and item is not None and item.title == "Kept, not parsed"


def test_a_folder_others_may_write_is_neither_read_nor_written(parses: list[str]) -> None:
    file = entry_file()
    folder = file.parent
    folder.chmod(0o777)
    try:
        items._parse_cached.cache_clear()
        del parses[:]
        parse_item(GOOD, KEY, SECTIONS)
        parse_item(GOOD.replace(b"DRIVES", b"DRIVEN"), KEY, SECTIONS)
        idle_writes.flush()
        assert parses == [KEY, KEY]
        assert kept_files() == [file]
    finally:
        folder.chmod(0o700)


def test_a_result_that_would_not_read_back_exactly_is_not_kept() -> None:
    """A datetime where the date goes would come back a date: such a result is not kept."""
    item, problems = item_parser.parse(GOOD, KEY, SECTIONS)
    assert item is not None
    odd = dataclasses.replace(item, date=dt.datetime(2022, 2, 1, 9, 30))
    item_cache.put(b"odd", KEY, SECTIONS, (odd, tuple(problems)))
    assert item_cache.get(b"odd", KEY, SECTIONS) is None
    item_cache.put(b"plain", KEY, SECTIONS, (item, tuple(problems)))
    assert item_cache.get(b"plain", KEY, SECTIONS) == (item, tuple(problems))


def test_past_most_files_the_older_half_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(item_cache, "MOST_FILES", 8)
    problem = (Problem("x.md", "a problem"),)
    for n in range(9):
        user_cache._pruned.clear()  # each put a command of its own: one prune per process
        item_cache.put(f"file {n}".encode(), "x.md", SECTIONS, (None, problem))
        folder = item_cache.folder()
        assert folder is not None
        stamp = 1_000_000_000 * (n + 1)
        os.utime(
            folder / f"{item_cache.entry_key(f'file {n}'.encode(), 'x.md', SECTIONS)}.json",
            ns=(stamp, stamp),
        )
    kept = [n for n in range(9) if item_cache.get(f"file {n}".encode(), "x.md", SECTIONS)]
    assert kept == [4, 5, 6, 7, 8]


def test_no_home_keeps_nothing_and_still_parses(
    parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "")
    item, _ = parse_item(GOOD, KEY, SECTIONS)
    items._parse_cached.cache_clear()
    again, _ = parse_item(GOOD, KEY, SECTIONS)
    assert item == again and parses == [KEY, KEY]
    assert load_items(ROOT / "submissions", SECTIONS).items


def test_an_item_file_named_in_bytes_that_are_not_utf8_is_a_problem_not_a_traceback() -> None:
    key = os.fsdecode(b"caf\xe9.md")  # as os.scandir names it
    item, problems = parse_item(GOOD.replace(b"DRIVES", b"DRIVEN"), key, SECTIONS)
    again, problems_again = parse_item(GOOD.replace(b"DRIVES", b"DRIVEN"), key, SECTIONS)
    assert item is not None and again == item and problems == problems_again
    bad, found = parse_item(GOOD, key, ["no-such-section"])
    assert bad is None and found


def test_an_order_too_long_to_print_is_a_problem_on_its_line_not_a_traceback() -> None:
    huge = re.sub(rb"order: *\d+", b"order: 0x" + b"f" * 4000, GOOD, count=1)
    assert huge != GOOD
    for _ in range(2):  # parsed, then from the cache
        item, problems = parse_item(huge, KEY, SECTIONS)
        assert item is None
        assert [(p.field, p.line) for p in problems] == [("order", 7)]
        assert "order is too large" in problems[0].message


def test_a_umask_letting_the_group_write_still_makes_the_cache_folders_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many desktops run with umask 002: the newsflash folder made on the way must be 0700
    too, or every cache would stay unused there."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh"))
    old = os.umask(0o002)
    try:
        folder = user_cache.cache_folder("newsflash", "items")
        assert folder is not None and user_cache.private_folder(folder)
    finally:
        os.umask(old)
    assert (folder.stat().st_mode & 0o777, folder.parent.stat().st_mode & 0o777) == (0o700, 0o700)


def test_one_process_lists_the_cache_folder_once_however_many_parses_it_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A preview saving the same item many times must not list a folder of thousands each
    time (the prune's scan was most of a warm rebuild's cost for the changed item)."""
    listed: list[object] = []
    real = os.scandir

    def counted(path: Any) -> Any:
        listed.append(path)
        return real(path)

    user_cache._pruned.clear()
    monkeypatch.setattr(user_cache.os, "scandir", counted)
    problem = (Problem("x.md", "a problem"),)
    for n in range(5):
        item_cache.put(f"saved {n}".encode(), "x.md", SECTIONS, (None, problem))
    assert len(listed) == 1
    assert all(item_cache.get(f"saved {n}".encode(), "x.md", SECTIONS) for n in range(5))


def test_a_parse_is_kept_off_the_callers_path_once_the_process_is_quiet(
    parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm rebuild does not wait for its changed item's file: the parse is written by
    idle_writes' thread once no write has come for IDLE_S (and at exit, see the cold load
    above), and the folder is checked again when it is."""
    monkeypatch.setattr(idle_writes, "IDLE_S", 0.05)
    edited = GOOD.replace(b"DRIVES", b"DRIVING")
    file = item_cache.folder() / f"{item_cache.entry_key(edited, KEY, SECTIONS)}.json"  # type: ignore[operator]
    parse_item(edited, KEY, SECTIONS)
    assert parses == [KEY] and not file.exists() and idle_writes.waiting() == 1
    for _ in range(200):
        if file.exists():
            break
        time.sleep(0.01)
    assert file.exists() and idle_writes.waiting() == 0
    items._parse_cached.cache_clear()
    assert parse_item(edited, KEY, SECTIONS)[0] is not None and parses == [KEY]
    other = GOOD.replace(b"DRIVES", b"DROVE")
    parse_item(other, KEY, SECTIONS)
    file.parent.chmod(0o777)  # no longer private when the write comes: nothing written
    try:
        idle_writes.flush()
        assert not (file.parent / f"{item_cache.entry_key(other, KEY, SECTIONS)}.json").exists()
    finally:
        file.parent.chmod(0o700)
