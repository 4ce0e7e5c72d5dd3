"""What intake last judged of each item file, kept across restarts in state/intake-judged.json.

A file whose content differs from the one last judged (or that is new) arrived or changed
while nobody watched, and is judged at start. Without a record yet, the files written after
the last line of state/intake.log count as new; without that log either (intake never ran),
none do: the record starts from what is there, and contributors are not mailed about files
that were checked, or placed, long before.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from newsflash.files import write_atomic
from newsflash.items import IGNORED_NAMES, ITEM_SUFFIXES, item_files

__all__ = ["unjudged_files", "write_record"]

log = logging.getLogger("newsflash.schedule.intake")


def _read(record_path: Path) -> dict[str, str] | None:
    try:
        doc = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("intake: %s is unreadable (%s); checking every file again", record_path, e)
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def write_record(root: Path, record_path: Path, judged: dict[Path, str]) -> None:
    doc = {p.relative_to(root).as_posix(): d for p, d in sorted(judged.items())}
    write_atomic(record_path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _is_item(path: Path) -> bool:
    return path.suffix.lower() in ITEM_SUFFIXES and path.name.lower() not in IGNORED_NAMES


def unjudged_files(
    root: Path, record_path: Path, log_path: Path
) -> tuple[dict[Path, str], list[Path]]:
    """(sha256 of each file judged before, or there before intake ran; files to judge now)."""
    record = _read(record_path)
    since = log_path.stat().st_mtime if log_path.exists() else None
    judged: dict[Path, str] = {}
    waiting: list[Path] = []
    for path in filter(_is_item, item_files(root)):
        try:
            data, mtime = path.read_bytes(), path.stat().st_mtime
        except OSError:
            continue
        digest = hashlib.sha256(data).hexdigest()
        known = record.get(path.relative_to(root).as_posix()) if record else None
        if known == digest or (record is None and (since is None or mtime <= since)):
            judged[path] = digest
        else:
            waiting.append(path)
    return judged, waiting
