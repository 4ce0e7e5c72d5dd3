"""The scheduler's notes in state/ about a send it must come back to.

``scheduler-send.json``: a scheduled send stopped or killed before it ended (its edition and
the time it was due: the grace period counts from there, however often it resumed).
``scheduler-held.json``: a scheduled send held for want of approval (its edition, when it was
due, and the approval there was then), sent once a new approval comes within grace.

A note that cannot be read is dropped with a warning: the ledger, not these notes, guards
against sending twice, so the worst a lost note costs is a send by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from newsflash.config import Config
from newsflash.files import write_atomic
from newsflash.sending.approval import load_approval

__all__ = [
    "HELD_FILE",
    "MARKER_FILE",
    "approved_at",
    "clear_held_send",
    "clear_interrupted_send",
    "held_send",
    "interrupted_send",
    "mark_held",
    "mark_started",
]

log = logging.getLogger("newsflash.schedule.jobs")

MARKER_FILE = "scheduler-send.json"
HELD_FILE = "scheduler-held.json"


def _marker(config: Config) -> Path:
    return config.state_dir / MARKER_FILE


def _read_note(path: Path) -> tuple[str, dt.datetime, dict[str, object]] | None:
    """A note's edition, due time and whole document; an unreadable note is dropped."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        due = dt.datetime.fromisoformat(str(doc.get("due") or doc["started_at"]))
        if due.tzinfo is None:
            raise ValueError("no time zone")
        return str(doc["edition"]), due, doc
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("%s is unreadable; ignoring it", path)
        path.unlink(missing_ok=True)
        return None


def interrupted_send(config: Config) -> tuple[str, dt.datetime] | None:
    """The scheduled send that was stopped or killed before it ended, if any: its edition and
    the time it was due (the grace period counts from there, however often it resumed)."""
    note = _read_note(_marker(config))
    return None if note is None else (note[0], note[1])


def clear_interrupted_send(config: Config) -> None:
    _marker(config).unlink(missing_ok=True)


def mark_started(config: Config, edition_id: str, due: dt.datetime) -> None:
    """Note that the scheduled send of `edition_id`, due at `due`, is under way.

    A marker already there for the same edition is kept as it is: a resumed send that is
    interrupted again still counts its grace period from the time it was first due."""
    current = interrupted_send(config)
    if current is not None and current[0] == edition_id:
        return
    doc = {
        "edition": edition_id,
        "due": due.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_atomic(_marker(config), json.dumps(doc) + "\n")


def _held_marker(config: Config) -> Path:
    return config.state_dir / HELD_FILE


def approved_at(config: Config, edition_id: str) -> str:
    """When the edition's latest approval was given ("" if never): a new one shows as a change."""
    approval = load_approval(config, edition_id)
    return approval.approved_at if approval is not None else ""


def mark_held(config: Config, edition_id: str, due: dt.datetime) -> None:
    doc = {
        "edition": edition_id,
        "due": due.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "approved_at": approved_at(config, edition_id),
    }
    write_atomic(_held_marker(config), json.dumps(doc) + "\n")


def held_send(config: Config) -> tuple[str, dt.datetime, str] | None:
    """The send held for want of approval: its edition, when it was due, and the approval
    (its time) that was there when it was held."""
    note = _read_note(_held_marker(config))
    return None if note is None else (note[0], note[1], str(note[2].get("approved_at") or ""))


def clear_held_send(config: Config) -> None:
    _held_marker(config).unlink(missing_ok=True)
