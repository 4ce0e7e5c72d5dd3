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

from dataclasses import dataclass
from pathlib import Path

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
from newsflash.subscriber_rows import decode

__all__ = [
    "COLUMNS",
    "DEFAULT_LANGUAGE",
    "STATUSES",
    "STATUS_WEIGHT",
    "Recipient",
    "StatusCell",
    "StatusMap",
    "SubscriberList",
    "SubscriberProblem",
    "load_subscribers",
    "locate_statuses",
    "parse_subscribers",
    "read_list",
    "recipient_id",
    "summary_table",
]

_LEGACY_FILE = (
    "the file is not UTF-8 (first non-UTF-8 byte on this line), so it was read as "
    "Latin-1 (Windows-1252); check that accented names look right and save the file "
    "as UTF-8 (in Excel: Save As > CSV UTF-8)"
)


def load_subscribers(path: Path) -> SubscriberList:
    """Decode the way spreadsheets actually save, then hand the text to the parser."""
    path = Path(path)
    return _parser_for(read_list(path), path).run()


def read_list(path: Path) -> bytes:
    """The file's bytes, or SubscribersError saying why they cannot be had."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SubscribersError(f"{path} does not exist; {MISSING_FILE_HINT}") from None
    except IsADirectoryError:
        raise SubscribersError(f"{path} is a directory, not a file; {MISSING_FILE_HINT}") from None
    except OSError as exc:
        raise SubscribersError(
            f"cannot read {path} ({exc.strerror or exc}); check its permissions"
        ) from None


def _parser_for(data: bytes, path: Path) -> Parser:
    decoded = decode(data)
    parser = Parser(decoded.text, path, legacy=decoded.encoding in ("legacy", "mixed"))
    if decoded.encoding == "legacy":
        parser.problem(decoded.first_legacy_line, _LEGACY_FILE, "warning")
    elif decoded.encoding == "mixed":
        parser.mixed = True  # one warning per row: the rest of the file is good UTF-8
    return parser


@dataclass(frozen=True, slots=True)
class StatusMap:
    """The list as the reader sees it, with where each accepted row's status stands."""

    subscribers: SubscriberList
    delimiter: str
    cells: tuple[StatusCell, ...]


def locate_statuses(data: bytes, path: Path) -> StatusMap:
    """Read the list exactly as a send does, noting each accepted row's status cell: writing
    statuses back must agree with the reader on which rows count and which address each has."""
    parser = _parser_for(data, Path(path))
    parser.cells = []
    sl = parser.run()
    return StatusMap(sl, parser.delimiter, tuple(parser.cells))


def parse_subscribers(text: str, path: Path) -> SubscriberList:
    """Pure so tests and benchmarks can feed text directly; the path is only used in messages."""
    return Parser(text, Path(path)).run()
