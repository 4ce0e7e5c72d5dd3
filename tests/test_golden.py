"""The sample edition builds to exactly the golden files in tests/golden/2022-02/.

A template, config or item change that alters the email shows up here as a readable diff. If
the change is intended, regenerate with `python tests/regenerate_golden.py` and review it.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from regenerate_golden import EDITION, FILES, FIXED_DATE, GOLDEN, build_files, normalise_eml

REGENERATE = "if the change is intended, run python tests/regenerate_golden.py and review the diff"


def _lines(name: str, data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    if name == "email.html":  # a few very long lines: break between tags to make diffs readable
        text = re.sub(r">(?=<)", ">\n", text)
    return text.splitlines(keepends=True)


def _diff(name: str, expected: bytes, actual: bytes, limit: int = 80) -> str:
    diff = list(
        difflib.unified_diff(
            _lines(name, expected),
            _lines(name, actual),
            fromfile=f"tests/golden/{EDITION}/{name}",
            tofile=f"fresh build/{EDITION}/{name}",
            n=2,
        )
    )
    if not diff and expected != actual:
        return f"{name}: differs only in line endings or bytes not shown by a text diff\n"
    more = f"... ({len(diff) - limit} more diff lines)\n" if len(diff) > limit else ""
    return "".join(line if line.endswith("\n") else line + "\n" for line in diff[:limit]) + more


@pytest.fixture
def fresh(workspace: Path) -> dict[str, bytes]:
    return build_files(workspace)


def test_golden_files_exist_for_every_build_output() -> None:
    missing = [name for name in FILES if not (GOLDEN / name).is_file()]
    assert not missing, f"missing golden files {missing}: run python tests/regenerate_golden.py"


def test_sample_edition_builds_to_the_golden_files(fresh: dict[str, bytes]) -> None:
    report = [
        _diff(name, (GOLDEN / name).read_bytes(), data)
        for name, data in fresh.items()
        if (GOLDEN / name).is_file() and (GOLDEN / name).read_bytes() != data
    ]
    assert not report, "fresh build differs from golden files:\n" + "\n".join(report) + REGENERATE


def test_build_writes_only_the_files_the_golden_set_covers(workspace: Path) -> None:
    build_files(workspace)
    written = sorted(
        p.name for p in (workspace / "build" / EDITION).iterdir() if not p.name.startswith(".")
    )
    assert written == sorted(FILES)


def test_preview_normalisation_leaves_two_builds_identical(workspace: Path) -> None:
    first = build_files(workspace)["preview.eml"]
    second = build_files(workspace)["preview.eml"]
    assert first == second
    assert b"Date: " + FIXED_DATE in first
    assert b"Message-ID: <golden.2022-02.0000000000000000@example.org>" in first


def test_preview_normalisation_touches_only_date_message_id_and_boundary() -> None:
    raw = (
        b"Date: Wed, 25 Nov 2026 14:59:49 -0000\r\n"
        b"Message-ID:\r\n <179561878934.7677.15440605879066463028.2022-02.0@example.org>\r\n"
        b'Content-Type: multipart/alternative;\r\n boundary="===============123=="\r\n\r\n'
        b"--===============123==\r\nDate: in the body stays\r\n--===============123==--\r\n"
    )
    out = normalise_eml(raw)
    assert b"Message-ID: <golden.2022-02.0@example.org>\r\n" in out
    assert b"123" not in out
    assert b"Date: in the body stays" in out
