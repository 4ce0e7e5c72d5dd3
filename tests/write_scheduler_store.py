"""Write a job store as a given checkout's scheduler writes it, for tests/test_schedule_upgrade.py.

    python tests/write_scheduler_store.py CHECKOUT OUT.sqlite

CHECKOUT is a checkout of the layout to record (`git archive COMMIT | tar -x -C DIR`); its
newsflash package is imported instead of this one. In a copy of its sample workspace, with a
send due at 13:00 on 17 June 2026 and a proof on the last Thursday at 10:00 (six hours of
grace), its scheduler is opened and closed at 12:00 that day in Brussels (time-machine): the
store it leaves holds both jobs, the send an hour ahead. A test that runs at 14:00 then finds
that send missed within grace, as after an upgrade that kept the scheduler down over it.
"""

from __future__ import annotations

import datetime as dt
import importlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import time_machine

WRITTEN_AT = dt.datetime(2026, 6, 17, 12, 0, tzinfo=ZoneInfo("Europe/Brussels"))
SCHEDULE = """
[schedule]
grace_hours = 6
require_approval = false
reviewers = ["reviewer@example.org"]
contributors = ["chair@example.org"]
deadline_days = 7
[schedule.send]
year = 2026
month = 6
day = 17
hour = 13
[schedule.proof]
day = "last thu"
hour = 10
"""
SAMPLE = ("config.toml", "subscribers.csv", "submissions")


def _without_schedule(config_text: str) -> str:
    """The sample's config.toml with its own [schedule] tables left out."""
    kept: list[str] = []
    skipping = False
    for line in config_text.splitlines():
        if line.strip().startswith("["):
            skipping = line.strip().startswith("[schedule")
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _open_scheduler(config: Any) -> Any:
    """open_scheduler wherever the checkout keeps it (its rooms, or the single module)."""
    for module in ("newsflash.schedule.scheduler", "newsflash.schedule"):
        try:
            return importlib.import_module(module).open_scheduler(config)
        except (ImportError, AttributeError):
            continue
    raise SystemExit("the checkout has no open_scheduler")


def write_store(checkout: Path, out: Path) -> None:
    sys.path.insert(0, str(checkout))
    load_config = importlib.import_module("newsflash.config").load_config
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        for name in SAMPLE:
            copy = shutil.copytree if (checkout / name).is_dir() else shutil.copy
            copy(checkout / name, workspace / name)
        config_path = workspace / "config.toml"
        text = _without_schedule(config_path.read_text(encoding="utf-8")) + SCHEDULE
        config_path.write_text(text, encoding="utf-8")
        config = load_config(config_path)
        with time_machine.travel(WRITTEN_AT, tick=False):
            _open_scheduler(config).shutdown(wait=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(config.state_dir / "scheduler.sqlite", out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    write_store(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
