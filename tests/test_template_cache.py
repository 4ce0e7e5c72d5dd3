"""The kept templates (newsflash/template_cache.py): a build that reads them writes the same
bytes as one that compiled every template, and an entry the cache cannot vouch for is
compiled again, never an error.

Every test has its own cache folder (conftest's XDG_CACHE_HOME). A hit is told from a miss by
whether Jinja2 compiled a template (counted) in a new Templates, as a fresh process has.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jinja2
import pytest

from newsflash import render_engine, template_cache, user_cache
from newsflash.render import HTML_TEMPLATE, PACKAGE_TEMPLATES, TEXT_TEMPLATE

NEWSFLASH = [str(Path(sys.executable).with_name("newsflash"))]


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names Jinja2 compiled from source: empty after a load, every template kept."""
    seen: list[str] = []
    real = jinja2.Environment.compile

    def counted(
        self: jinja2.Environment, source: str, name: str | None = None, *a: object
    ) -> object:
        seen.append(str(name))
        return real(self, source, name, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    return seen


def load_both(folder: Path) -> tuple[jinja2.Template, jinja2.Template]:
    templates = render_engine.Templates(folder, PACKAGE_TEMPLATES)
    return templates.html.get_template(HTML_TEMPLATE), templates.text.get_template(TEXT_TEMPLATE)


def kept() -> list[Path]:
    folder = user_cache.cache_folder(*template_cache.FOLDER)
    assert folder is not None
    return sorted(folder.glob("*.jinja")) if folder.is_dir() else []


def test_a_new_templates_reads_the_kept_code_and_compiles_nothing(
    tmp_path: Path, compiled: list[str]
) -> None:
    load_both(tmp_path)
    assert compiled == [HTML_TEMPLATE, TEXT_TEMPLATE]
    assert len(kept()) == 2  # one each: the HTML and the text environment compile apart
    del compiled[:]
    load_both(tmp_path)
    assert compiled == []


def test_an_edited_template_or_a_new_newsflash_is_compiled_again(
    tmp_path: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "templates"
    own.mkdir()
    (own / TEXT_TEMPLATE).write_text((PACKAGE_TEMPLATES / TEXT_TEMPLATE).read_text())
    load_both(own)
    (own / TEXT_TEMPLATE).write_text((own / TEXT_TEMPLATE).read_text() + "\nedited\n")
    del compiled[:]
    load_both(own)
    assert compiled == [TEXT_TEMPLATE]
    monkeypatch.setattr(template_cache, "package_fingerprint", lambda: "a newer newsflash")
    del compiled[:]
    load_both(own)
    assert compiled == [HTML_TEMPLATE, TEXT_TEMPLATE]


def _spoilers() -> list[tuple[str, Callable[[Path], None]]]:
    def put(data: bytes) -> Callable[[Path], None]:
        return lambda file: file.write_bytes(data)

    def digest_kept(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
        """Change the payload and write a matching digest: only the later checks stand."""

        def spoil(file: Path) -> None:
            payload = change(file.read_bytes()[32:])
            file.write_bytes(hashlib.sha256(payload).digest() + payload)

        return spoil

    magic = jinja2.bccache.bc_magic
    return [
        ("empty", put(b"")),
        ("random bytes", put(os.urandom(512))),
        ("truncated", lambda file: file.write_bytes(file.read_bytes()[:-40])),
        (
            "one byte changed",
            lambda f: f.write_bytes(f.read_bytes()[:-9] + b"\0" + f.read_bytes()[-8:]),
        ),
        ("another magic", digest_kept(lambda p: b"x" * len(magic) + p[len(magic) :])),
        ("a global in the pickle", digest_kept(lambda p: magic + pickle.dumps(os.getcwd) + b"")),
        ("not code", digest_kept(lambda p: p[: p.index(b".", len(magic)) + 1] + b"N")),
        ("writable by others", lambda file: file.chmod(0o666)),
    ]


@pytest.mark.parametrize(("what", "spoil"), _spoilers(), ids=[w for w, _ in _spoilers()])
def test_every_uncertain_kept_template_is_compiled_again_never_an_error(
    what: str, spoil: Callable[[Path], None], tmp_path: Path, compiled: list[str]
) -> None:
    load_both(tmp_path)
    for file in kept():
        spoil(file)
    del compiled[:]
    load_both(tmp_path)
    assert compiled == [HTML_TEMPLATE, TEXT_TEMPLATE], what


def test_a_build_from_kept_templates_writes_the_same_files(workspace: Path) -> None:
    """Across processes, as `newsflash build` runs: state/ removed so the email is rendered
    again, the second time from the kept templates; the preview's Date, Message-ID and MIME
    boundary are each build's own."""

    def build() -> dict[str, bytes]:
        subprocess.run(
            [*NEWSFLASH, "build", "2022-02"], cwd=workspace, check=True, capture_output=True
        )
        out = workspace / "build" / "2022-02"
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        files["preview.eml"] = re.sub(
            rb"=+\d+==|\r\n(?:Date|Message-ID):[^\r]*(?:\r\n[ \t][^\r]*)*",
            b"",
            files["preview.eml"],
        )
        subprocess.run(["rm", "-rf", str(workspace / "state"), str(out)], check=True)
        return files

    first = build()
    assert len(kept()) >= 2
    stamps = {f: f.stat().st_mtime_ns for f in kept()}
    again = build()
    assert again == first and len(first) == 5
    assert {f: f.stat().st_mtime_ns for f in kept()} == stamps  # read, not written again


def test_past_most_kept_templates_the_older_half_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each newsflash version compiles its own entries: without a bound they would pile up."""
    monkeypatch.setattr(template_cache, "MOST_FILES", 6)
    folder = tmp_path / "t"
    folder.mkdir()
    for n in range(20):
        user_cache._pruned.clear()  # each template a command of its own: one prune a process
        (folder / f"n{n}.j2").write_text(f"number {n}")
        env = render_engine.Templates(folder, PACKAGE_TEMPLATES).html
        assert env.get_template(f"n{n}.j2").render() == f"number {n}"
        assert len(kept()) <= 7
    assert kept()
