"""Read the partner list as people really export it, and never mail someone who opted out.

subscribers.csv comes out of spreadsheets and CRMs, so it arrives with a BOM, `;` or tab
delimiters, stray spaces, mixed-case and duplicate addresses, blank lines and sometimes in
Latin-1. Each of those is handled here; every row that cannot be trusted is skipped and reported
with its line number, so the person who owns the list can fix it at the source, and an address
that also stands on a skipped row is held back (that row may be its opt-out). A file that cannot
be read at all, or cannot say who opted out (no `status` column), raises `SubscribersError`.

The reading is in rooms: subscriber_rows.py (bytes -> text -> rows of cells, the delimiter),
subscriber_parser.py (rows -> recipients and problems), subscriber_addresses.py (which
addresses can be sent to), subscriber_list.py (the list read: the audience rule, the summary).
This module is the door: load a file, or locate its status cells for `subscribers apply`.
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from newsflash.errors import SubscribersError
from newsflash.subscriber_list import (
    COLUMNS,
    DEFAULT_LANGUAGE,
    STATUS_WEIGHT,
    STATUSES,
    Recipient,
    StatusCell,
    SubscriberList,
    SubscriberProblem,
    recipient_id,
    summary_table,
)
from newsflash.subscriber_parser import MISSING_FILE_HINT, Parser
from newsflash.subscriber_roster import Roster
from newsflash.subscriber_rows import decide, lines, text_lines

__all__ = [
    "COLUMNS",
    "DEFAULT_LANGUAGE",
    "STATUSES",
    "STATUS_WEIGHT",
    "Recipient",
    "Roster",
    "StatusCell",
    "StatusMap",
    "SubscriberList",
    "SubscriberProblem",
    "load_subscribers",
    "locate_statuses",
    "parse_subscribers",
    "read_list",
    "read_roster",
    "recipient_id",
    "summary_table",
]

_LEGACY_FILE = (
    "the file is not UTF-8 (first non-UTF-8 byte on this line), so it was read as "
    "Latin-1 (Windows-1252); check that accented names look right and save the file "
    "as UTF-8 (in Excel: Save As > CSV UTF-8)"
)


def load_subscribers(path: Path) -> SubscriberList:
    """The whole list as Python objects, for the commands that show, count or search it."""
    with read_roster(path) as roster:
        return roster.to_list()


def read_roster(path: Path) -> Roster:
    """Decode the way spreadsheets actually save, reading the file line by line: two passes
    over its bytes (how to decode them, then the rows), never its whole text at once, into a
    roster kept in SQLite, so a send of any length holds no per-partner object. The caller
    closes it."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            return _parse(stream, path)[0]
    except OSError as exc:
        raise _unreadable(path, exc) from None


def read_list(path: Path) -> bytes:
    """The file's bytes, or SubscribersError saying why they cannot be had."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: OSError) -> SubscribersError:
    if isinstance(exc, FileNotFoundError):
        return SubscribersError(f"{path} does not exist; {MISSING_FILE_HINT}")
    if isinstance(exc, IsADirectoryError):
        return SubscribersError(f"{path} is a directory, not a file; {MISSING_FILE_HINT}")
    return SubscribersError(f"cannot read {path} ({exc.strerror or exc}); check its permissions")


def _parse(
    stream: BinaryIO, path: Path, cells: list[StatusCell] | None = None
) -> tuple[Roster, str]:
    """The one way a list is read, from a file or from bytes: the list and its delimiter;
    `cells`: where to note the status cells."""
    decision = decide(stream)
    try:
        parser = Parser(
            text_lines(stream, decision), path, legacy=decision.encoding in ("legacy", "mixed")
        )
    except sqlite3.Error as e:
        raise _no_scratch(path, e) from None
    parser.cells = cells
    if decision.encoding == "legacy":
        parser.problem(decision.first_legacy_line, _LEGACY_FILE, "warning")
    elif decision.encoding == "mixed":
        parser.mixed = True  # one warning per row: the rest of the file is good UTF-8
    try:
        return parser.run(), parser.delimiter
    except UnicodeDecodeError:
        parser.roster.close()
        raise SubscribersError(
            f"{path} changed while it was being read (it no longer decodes as it did a moment "
            "before); wait until it is saved and run the command again"
        ) from None
    except sqlite3.Error as e:
        parser.roster.close()
        raise _no_scratch(path, e) from None


def _no_scratch(path: Path, e: sqlite3.Error) -> SubscribersError:
    """The roster's temporary file could not be written (a full or read-only temp folder)."""
    return SubscribersError(
        f"{path}: its rows could not be kept in a temporary file ({e}); free some space in "
        "the temporary folder (TMPDIR if set, else /var/tmp or /tmp) and run the command again"
    )


@dataclass(frozen=True, slots=True)
class StatusMap:
    """The list as the reader sees it, with where each accepted row's status stands."""

    subscribers: SubscriberList
    delimiter: str
    cells: tuple[StatusCell, ...]


def locate_statuses(data: bytes, path: Path) -> StatusMap:
    """Read the list exactly as a send does, noting each accepted row's status cell: writing
    statuses back must agree with the reader on which rows count and which address each has."""
    cells: list[StatusCell] = []
    roster, delimiter = _parse(io.BytesIO(data), Path(path), cells)
    with roster:
        return StatusMap(roster.to_list(), delimiter, tuple(cells))


def parse_subscribers(text: str, path: Path) -> SubscriberList:
    """Pure so tests and benchmarks can feed text directly; the path is only used in messages."""
    with Parser(lines(text), Path(path)).run() as roster:
        return roster.to_list()
