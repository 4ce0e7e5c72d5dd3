"""read_cache answers what the disk holds: a file or a folder listing comes from memory only
while its stat is unchanged and settled, and anything changed, however it was changed (same
size, times set back, within one tick), is read again."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine

from newsflash import read_cache
from newsflash.items import load_items


def _settled_clock(*paths: Path) -> time_machine.travel:
    """The clock an hour after the newest change of `paths`: their stats are then settled.
    Taken from the files themselves, so the test does not depend on the day it runs."""
    newest = max(p.stat().st_ctime for p in paths)
    return time_machine.travel(dt.datetime.fromtimestamp(newest + 3600, dt.UTC), tick=True)


def _recent_clock(path: Path) -> time_machine.travel:
    """The clock half a second after the file's change: within the margin, so not settled."""
    when = path.stat().st_ctime + 0.5
    return time_machine.travel(dt.datetime.fromtimestamp(when, dt.UTC), tick=False)


def _disk_listing(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "drop"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("aaaa", encoding="utf-8")
    (root / "sub" / "b.md").write_text("bbbb", encoding="utf-8")
    yield root


def test_a_settled_unchanged_file_is_answered_from_memory_without_reading_it(
    folder: Path,
) -> None:
    path = folder / "a.md"
    with _settled_clock(path):
        before = read_cache.reads
        assert read_cache.read_bytes(path) == b"aaaa"
        assert read_cache.read_bytes(path) == b"aaaa"
        assert read_cache.reads == before + 1


def test_a_file_rewritten_with_the_same_size_and_its_times_set_back_is_read_again(
    folder: Path,
) -> None:
    """`cp -p`, `rsync -t` or `touch -d` restore mtime; the ctime still moves."""
    path = folder / "a.md"
    st = path.stat()
    with _settled_clock(path):
        assert read_cache.read_bytes(path) == b"aaaa"
        path.write_bytes(b"cccc")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert read_cache.read_bytes(path) == b"cccc"


def test_a_file_changed_moments_ago_is_read_again_on_every_call(folder: Path) -> None:
    """Within the margin a second write may keep every field of the stat, so the stat is not
    trusted yet."""
    path = folder / "a.md"
    with _recent_clock(path):
        before = read_cache.reads
        read_cache.read_bytes(path)
        read_cache.read_bytes(path)
        assert read_cache.reads == before + 2


def test_a_file_gone_is_an_oserror_as_from_the_disk(folder: Path) -> None:
    path = folder / "a.md"
    with _settled_clock(path):
        read_cache.read_bytes(path)
        path.unlink()
        with pytest.raises(FileNotFoundError):
            read_cache.read_bytes(path)


def test_files_added_removed_renamed_or_nested_are_listed_at_once(folder: Path) -> None:
    changes = [
        lambda: (folder / "sub" / "new.md").write_text("x", encoding="utf-8"),
        lambda: (folder / "a.md").unlink(),
        lambda: (folder / "sub" / "b.md").rename(folder / "sub" / "c.md"),
        lambda: (folder / "sub" / "deeper").mkdir(),
        lambda: (folder / "sub" / "deeper" / "d.md").write_text("d", encoding="utf-8"),
        lambda: (folder / "sub" / "c.md").rename(folder / "c.md"),
    ]
    for change in changes:
        with _settled_clock(folder, *folder.rglob("*")):
            read_cache.files_under(folder)
            change()
            listed = [p for p, _ in read_cache.files_under(folder)]
            assert listed == _disk_listing(folder)


def test_a_settled_listing_is_not_walked_again(folder: Path) -> None:
    with _settled_clock(folder, *folder.rglob("*")):
        read_cache.files_under(folder)
        walks = read_cache.walks
        listed = read_cache.files_under(folder)
        assert read_cache.walks == walks
        assert [rel for _, rel in listed] == ["a.md", "sub/b.md"]


def test_a_listing_that_holds_a_symbolic_link_is_walked_every_time(
    folder: Path, tmp_path: Path
) -> None:
    """What a link points at changes without the linking folder's stat moving: a link to a
    file whose target goes is no longer a file."""
    target = tmp_path / "elsewhere.md"
    target.write_text("e", encoding="utf-8")
    (folder / "linked.md").symlink_to(target)
    with _settled_clock(folder, target, *folder.rglob("*")):
        assert [p for p, _ in read_cache.files_under(folder)] == _disk_listing(folder)
        target.unlink()
        listed = [p for p, _ in read_cache.files_under(folder)]
        assert listed == _disk_listing(folder) and folder / "linked.md" not in listed


def test_an_item_edited_in_place_to_the_same_size_and_mtime_is_loaded_anew(
    folder: Path,
) -> None:
    item = folder / "item.md"
    text = "---\ntitle: {}\nsection: news\ndate: 2022-02-01\n---\nBody.\n"
    item.write_text(text.format("Alpha"), encoding="utf-8")
    st = item.stat()
    with _settled_clock(*folder.rglob("*")):
        first = load_items(folder, ["news"]).items
        item.write_text(text.format("Omega"), encoding="utf-8")
        os.utime(item, ns=(st.st_atime_ns, st.st_mtime_ns))
        again = load_items(folder, ["news"]).items
    assert [i.title for i in first if i.key == "item.md"] == ["Alpha"]
    assert [i.title for i in again if i.key == "item.md"] == ["Omega"]
