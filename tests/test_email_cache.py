"""The emails kept in the user's cache folder (newsflash/email_cache.py): a first build in a new
state/ of an edition rendered before renders nothing and gives the same email; whatever the
folder holds that the cache cannot vouch for is a render, never an error nor another email.

Every test has its own cache folder (conftest's XDG_CACHE_HOME)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_build_stamp import fresh_build

from newsflash import email_cache, pipeline, render_cache, user_cache
from newsflash.config import load_config
from newsflash.pipeline import BuiltEdition

ED = "2022-02"


def build(workspace: Path) -> tuple[BuiltEdition, int]:
    """A build as a new `newsflash build` process makes it, and how many renders it ran."""
    config = load_config(workspace / "config.toml")
    renderer = pipeline.cached_renderer(config)
    return pipeline.build_edition(config, ED, renderer), renderer.renders


def kept_files() -> list[Path]:
    folder = user_cache.cache_folder(*email_cache.FOLDER)
    assert folder is not None
    return sorted(folder.glob("*.email"))


def test_a_first_build_in_a_new_state_folder_renders_nothing_and_gives_the_same_email(
    workspace: Path,
) -> None:
    first, renders = build(workspace)
    assert renders == 1 and len(kept_files()) == 1
    shutil.rmtree(workspace / "state")
    again, renders = build(workspace)
    assert renders == 0
    assert again.email == first.email
    assert list((workspace / "state" / pipeline.RENDER_CACHE).glob("*.json"))  # as if rendered


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data[:-10],  # truncated
        lambda data: data[:40] + b"X" + data[41:],  # one byte changed behind the digest
        lambda data: b"",
    ],
    ids=["truncated", "damaged", "empty"],
)
def test_a_kept_email_that_is_not_whole_is_rendered_again(workspace: Path, spoil: object) -> None:
    first, _ = build(workspace)
    (file,) = kept_files()
    file.write_bytes(spoil(file.read_bytes()))  # type: ignore[operator]
    shutil.rmtree(workspace / "state")
    again, renders = build(workspace)
    assert renders == 1 and again.email == first.email


def test_an_entry_that_names_another_key_or_others_may_write_is_not_read(
    workspace: Path,
) -> None:
    first, _ = build(workspace)
    (file,) = kept_files()
    forged = dict.fromkeys(render_cache.PARTS, "forged")
    user_cache.write_sealed(file, render_cache.email_document("0" * 64, forged).encode())
    shutil.rmtree(workspace / "state")
    again, renders = build(workspace)
    assert renders == 1 and again.email == first.email
    file.chmod(0o666)  # the render above kept the true email: now anyone could have written it
    shutil.rmtree(workspace / "state")
    _, renders = build(workspace)
    assert renders == 1


def test_a_cache_folder_others_may_write_is_neither_read_nor_written(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    (shared / "newsflash" / "emails").mkdir(parents=True)
    (shared / "newsflash" / "emails").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    build(workspace)
    assert list((shared / "newsflash" / "emails").iterdir()) == []
    shutil.rmtree(workspace / "state")
    _, renders = build(workspace)
    assert renders == 1


def test_a_cold_first_build_of_an_edition_rendered_before_imports_no_renderer(
    workspace: Path,
) -> None:
    def run() -> tuple[tuple[int, str, str], list[str], dict[str, bytes]]:
        shutil.rmtree(workspace / "state", ignore_errors=True)
        done, heavy = fresh_build(workspace, ED)
        out = workspace / "build" / ED
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "preview.eml"}
        return (done.returncode, done.stdout, done.stderr), heavy, files

    first, heavy_first, first_files = run()
    again, heavy, again_files = run()
    assert first[0] == 0 and {"premailer", "mjml", "jinja2"} <= set(heavy_first)
    assert not {"premailer", "mjml", "jinja2", "cssutils", "lxml"} & set(heavy)
    assert (again, again_files) == (first, first_files)
