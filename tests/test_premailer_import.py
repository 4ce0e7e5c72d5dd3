"""premailer imported without requests (newsflash/premailer_import.py): a build never imports
the HTTP stack, and premailer still reaches the real requests should it ever read it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ED = "2022-02"
HTTP = ("requests", "urllib3", "charset_normalizer", "chardet")


def modules_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + f"\nprint(sorted(m for m in {HTTP!r} if m in sys.modules))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: list[str] = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    return result


def test_a_build_that_renders_imports_no_http_library(workspace: Path) -> None:
    shutil.rmtree(workspace / "state", ignore_errors=True)
    code = (
        "import sys\nfrom newsflash.cli import main\n"
        f"try:\n    main(['--config', {str(workspace / 'config.toml')!r}, 'build', {ED!r}])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'premailer' in sys.modules  # it rendered"
    )
    assert modules_after(code) == []


def test_premailer_reads_the_real_requests_when_it_reads_it_and_others_import_it() -> None:
    code = (
        "import sys\nfrom newsflash import premailer_import\nimport premailer.premailer as pm\n"
        "assert 'requests' not in sys.modules\n"
        "assert pm.requests.get.__module__ == 'requests.api', pm.requests.get.__module__\n"
        "import requests\nassert requests.Session is pm.requests.Session"
    )
    assert modules_after(code) == sorted(["chardet", "charset_normalizer", "requests", "urllib3"])


def test_a_process_that_imported_requests_first_keeps_it_for_premailer() -> None:
    code = (
        "import sys\nimport requests\nfrom newsflash import premailer_import\n"
        "import premailer.premailer as pm\nassert pm.requests is requests"
    )
    assert "requests" in modules_after(code)
