"""One pass over subscribers.csv's rows: the header, each row's cells, duplicates merged.

The rows come from subscriber_rows.py (one bad row stays that row's problem); each row either
goes into the roster (subscriber_roster.py, which merges duplicates in SQLite) or is skipped
with its line number and what to fix, and every address a skipped row mentions is held back if
it also stands on a good row (that row may be its opt-out). A list without `email` or
`status`, or with either twice, is refused whole.
"""

from __future__ import annotations

import difflib
import heapq
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from newsflash.errors import SubscribersError
from newsflash.subscriber_addresses import MAX_ADDRESS_LENGTH, Addresses
from newsflash.subscriber_list import COLUMNS, StatusCell, SubscriberProblem, status_of
from newsflash.subscriber_roster import Roster, segment_text
from newsflash.subscriber_rows import (
    UnreadableRow,
    did_you_mean,
    from_legacy,
    has_legacy_bytes,
    read_rows,
    shown,
    sniffed,
)

__all__ = ["MISSING_FILE_HINT", "Parser"]

MISSING_FILE_HINT = (
    "create subscribers.csv with at least an `email` and a `status` column; see README"
)

# The columns a list cannot be sent without, and what each one answers.
_REQUIRED = {"email": "whom to mail", "status": "who unsubscribed, bounced or complained"}

_HEADER_SPACES = re.compile(r"[\s\-]+")
# Invisible codes that must not reach a To: header: C0/C1 controls other than the tab and line
# breaks that whitespace-folding already handles, and the bidi embeddings and overrides.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MAX_UNKNOWN_COLUMNS = 5
_FORMULA = ("=", "+", "@")  # what a spreadsheet would evaluate at the start of a cell
# Splits a skipped row into words, one of which may be an address to hold (linear, no regex
# backtracking on a 100k-character cell).
_TOKEN_SPLIT = re.compile(r"[\s,;|\"'<>()\[\]\x1f]+")


class Parser:
    """Holds per-file state (problems, merge index, domain cache) for one pass over the rows."""

    def __init__(self, lines: Iterable[str], path: Path, *, legacy: bool = False) -> None:
        self.lines = iter(lines)  # as subscriber_rows.lines gives them: read as the rows go
        self.path = path
        self.legacy = legacy  # cells may hold bytes that were not UTF-8 (see subscriber_rows)
        self.mixed = False  # ...in a file that is otherwise UTF-8: warn on each such row
        self.problems: list[SubscriberProblem] = []
        self.roster = Roster(path)  # the accepted rows, merged by address (in SQLite)
        self.addresses = Addresses()
        self.skipped_addresses: dict[str, int] = {}  # address on a skipped row -> its line
        self.cells: list[StatusCell] | None = None  # kept only for locate_statuses

    def problem(
        self, line: int | None, message: str, severity: Literal["error", "warning"]
    ) -> None:
        self.problems.append(SubscriberProblem(self.path, line, message, severity))

    def run(self) -> Roster:
        """The list read; the caller closes the roster (or it closes with the parser's)."""
        try:
            self._run()
        except BaseException:
            self.roster.close()
            raise
        return self.roster

    def _run(self) -> None:
        before = len(self.problems)  # said of the whole file, before its rows
        self.delimiter, lines = sniffed(self.lines)
        self._read(read_rows(lines, self.delimiter))
        merged = self.roster.merge()
        # Each merge warning where reading the row would have put it: after that line's others.
        in_rows = heapq.merge(self.problems[before:], merged, key=lambda p: p.line or 0)
        self.problems[before:] = list(in_rows)
        held = self.roster.present(self.skipped_addresses)
        for key in sorted(held, key=lambda k: self.skipped_addresses[k]):
            line, email = self.roster.first_row(key)
            self.problem(
                line,
                f"{email} also stands on line {self.skipped_addresses[key]}, which has an "
                "error and was skipped; it is not sent to until that row is fixed (it may be "
                "an opt-out)",
                "warning",
            )
        self.roster.problems, self.roster.held = tuple(self.problems), held

    def _read(self, rows: Iterator[tuple[int, list[str] | UnreadableRow]]) -> None:
        """One loop, no per-row closures: this is the hot path for 100k-row lists.

        Rows of only spaces or delimiters are what spreadsheets leave below the data, so they
        are skipped like blank lines. A row that repeats the header (two exports pasted
        together) switches to its columns for the rows below it.
        """
        positions = self._header(rows)
        width = positions[-1]
        padding = [""] * (width + 1)
        i_email = positions[0]
        for start, row in rows:
            if isinstance(row, UnreadableRow):
                self._unreadable(row)
                continue
            joined = "".join(row)
            if not joined.strip():
                continue
            if len(row) > width:
                if "".join(row[width:]).strip():
                    self._too_many_values(start, row, width)
                    continue
                del row[width:]
            if "\ufeff" in joined:  # a BOM where two files were pasted together
                row = [v.replace("\ufeff", "") for v in row]
            values = [v.strip() for v in row]
            values += padding[len(values) :]
            if self.legacy and has_legacy_bytes(joined):
                repaired = self._from_legacy(start, values, positions)
                if repaired is None:
                    continue
                values = repaired
            if values[i_email].lower() in COLUMNS and _names_columns(values):
                positions = self._columns(start, row, repeated=True)
                width, i_email = positions[-1], positions[0]
                padding = [""] * (width + 1)
                continue
            self._row(start, values, positions, _CONTROL.search(joined) is not None)

    def _header(self, rows: Iterator[tuple[int, list[str] | UnreadableRow]]) -> tuple[int, ...]:
        for start, row in rows:
            if isinstance(row, UnreadableRow):
                raise SubscribersError(
                    f"{self.path}:{row.line}: the header line cannot be read: {row.message}"
                )
            if "".join(row).strip():
                if self.legacy:
                    row = [from_legacy(v) for v in row]
                return self._columns(start, row)
        raise SubscribersError(f"{self.path} is empty; {MISSING_FILE_HINT}")

    def _columns(self, line: int, header: list[str], *, repeated: bool = False) -> tuple[int, ...]:
        """Positions of COLUMNS, then the header's width; absent columns point at the width,
        a trailing "" slot, so every lookup is a plain index. Unknown names are reported but
        never fatal; a list without `email` or `status` cannot be sent to, so it is refused."""
        columns: dict[str, int] = {}
        unknown: list[tuple[str, str]] = []
        for position, raw in enumerate(header):
            name = _HEADER_SPACES.sub("_", raw.strip().strip("\ufeff").lower())
            if not name:
                continue  # trailing delimiter from a spreadsheet; nothing to map
            if name not in COLUMNS:
                unknown.append((raw.strip(), name))
            elif name in columns:
                self._duplicate_column(line, name, columns[name], position)
            else:
                columns[name] = position
        self._unknown_columns(line, unknown)
        for required, why in _REQUIRED.items():
            if required not in columns:
                self._missing_column(line, header, required, why)
        if repeated:
            self.problem(
                line,
                "this line repeats the header (two lists pasted together?), so it is skipped "
                "and the rows below it are read by its column names; delete it",
                "warning",
            )
        width = len(header)
        return (*(columns.get(name, width) for name in COLUMNS), width)

    def _unknown_columns(self, line: int, unknown: list[tuple[str, str]]) -> None:
        """One warning each, up to a few: a header of thousands of names is one mistake."""
        known = ", ".join(COLUMNS)
        for raw, name in unknown[:_MAX_UNKNOWN_COLUMNS]:
            self.problem(
                line,
                f"unknown column {shown(raw)} is ignored{did_you_mean(name, COLUMNS)}; "
                f"known columns are {known}",
                "warning",
            )
        if len(unknown) > _MAX_UNKNOWN_COLUMNS:
            self.problem(
                line,
                f"{len(unknown) - _MAX_UNKNOWN_COLUMNS:,} more unknown columns are ignored; "
                f"known columns are {known}",
                "warning",
            )

    def _duplicate_column(self, line: int, name: str, first: int, again: int) -> None:
        where = f"columns {first + 1} and {again + 1}"
        if name in _REQUIRED:
            raise SubscribersError(
                f"{self.path}:{line}: column `{name}` appears twice ({where}), so a row could "
                f"say two different things about {_REQUIRED[name]}; delete or rename one"
            )
        self.problem(
            line,
            f"column {name!r} appears more than once ({where}); only the first is used, "
            "so delete or rename the other",
            "warning",
        )

    def _missing_column(self, line: int, header: list[str], required: str, why: str) -> None:
        found = [h.strip().strip("\ufeff") for h in header if h.strip()]
        by_lower = {f.lower(): f for f in found}
        closest = difflib.get_close_matches(required, list(by_lower), n=1)
        hint = f"; rename {shown(by_lower[closest[0]])} to `{required}`" if closest else ""
        listed = ", ".join(shown(f) for f in found[:20]) if found else "none"
        if len(found) > 20:
            listed += f" and {len(found) - 20} more"
        if required == "email":
            todo = "the first line must name the columns, with at least `email` and `status`"
        else:
            todo = (
                f"without it the list cannot say {why}, so it is not sent to: add a `status` "
                "column and write `subscribed` for each partner who agreed to receive the "
                "newsletter (or unsubscribed, bounced, complained)"
            )
        raise SubscribersError(
            f"{self.path}:{line}: no `{required}` column (columns found: {listed}){hint}; {todo}"
        )

    def _too_many_values(self, line: int, row: list[str], width: int) -> None:
        self._hold(line, "\x1f".join(row))
        self.problem(
            line,
            f"this row has {len(row)} values but the header has {width} columns, so the "
            "values cannot be matched to columns; put quotes around any value that contains "
            'the delimiter (e.g. "ACME, Inc.")',
            "error",
        )

    def _unreadable(self, row: UnreadableRow) -> None:
        self._hold(row.line, from_legacy(row.text) if self.legacy else row.text)
        self.problem(row.line, row.message, "error")

    def _from_legacy(
        self, line: int, values: list[str], positions: tuple[int, ...]
    ) -> list[str] | None:
        """Read a row's non-UTF-8 bytes as Windows-1252, except in the address: a guessed
        address could be someone else's, so that row is skipped (its look-alikes held)."""
        repaired = [from_legacy(v) for v in values]
        i_email = positions[0]
        if has_legacy_bytes(values[i_email]):
            self._hold(line, "\x1f".join(repaired))
            self.problem(
                line,
                f"the address {shown(repaired[i_email])} is not valid UTF-8 on this line, and an "
                "address is never guessed, so the row is skipped; retype it and save the file "
                "as UTF-8 (in Excel: Save As > CSV UTF-8)",
                "error",
            )
            return None
        if self.mixed:
            changed = [
                f"{name} {shown(repaired[i])}"
                for name, i in zip(COLUMNS, positions, strict=False)
                if i < len(values) and values[i] != repaired[i]
            ]
            self.problem(
                line,
                "this line is not UTF-8 like the rest of the file, so it was read as "
                f"Windows-1252 ({', '.join(changed) or 'in an ignored column'}); check that "
                "it looks right and save the file as UTF-8 (in Excel: Save As > CSV UTF-8)",
                "warning",
            )
        return repaired

    def _hold(self, line: int, text: str) -> None:
        """Every address a skipped row mentions is held if it is also on a good row."""
        for token in _TOKEN_SPLIT.split(text):
            if "@" in token and len(token) <= MAX_ADDRESS_LENGTH:
                email = self.addresses.normalise(token, [], self.delimiter)
                key = (email or token).lower()
                self.skipped_addresses.setdefault(key, line)

    def _row(
        self, line: int, values: list[str], positions: tuple[int, ...], controls: bool
    ) -> None:
        i_email, i_first, i_last, i_org, i_segments, i_status, i_language, _ = positions
        errors: list[str] = []
        email = self.addresses.normalise(values[i_email], errors, self.delimiter)
        status = status_of(values[i_status], errors)
        if email is None or status is None:
            for message in errors:
                self.problem(line, message, "error")
            self._hold(line, "\x1f".join(values))
            return

        names = [values[i_first], values[i_last], values[i_org]]
        # Spelt out, not any(genexpr): this runs once a row, and the generator cost more than
        # the rest of the row's checks.
        if (
            controls
            or names[0].startswith(_FORMULA)
            or names[1].startswith(_FORMULA)
            or names[2].startswith(_FORMULA)
        ):
            names = self._clean_names(line, names)
        key = email.lower()
        if self.cells is not None:
            self.cells.append(StatusCell(line, key, status, i_status))
        self.roster.add(
            (
                line,
                key,
                email,
                # A cell with a line break (a spreadsheet's Alt+Enter) would break mail headers.
                " ".join(names[0].split()),
                " ".join(names[1].split()),
                " ".join(names[2].split()),
                segment_text(values[i_segments]),
                status,
                values[i_language].lower(),
            )
        )

    def _clean_names(self, line: int, names: list[str]) -> list[str]:
        """Names reach the To: header and the greeting: control characters (NUL, escape,
        bidi overrides) are removed, formula-like names are kept as text but pointed out."""
        cleaned = []
        for column, value in zip(("first_name", "last_name", "organisation"), names, strict=True):
            if _CONTROL.search(value):
                value = _CONTROL.sub("", value)
                self.problem(
                    line,
                    f"{column} had control characters (invisible codes that would reach the "
                    f"To: header), removed: now {shown(' '.join(value.split()))}; check the cell",
                    "warning",
                )
            elif value.startswith(_FORMULA):
                self.problem(
                    line,
                    f"{column} {shown(value)} looks like a spreadsheet formula; it is used as "
                    "plain text in the greeting and the To: header, so check the cell",
                    "warning",
                )
            cleaned.append(value)
        return cleaned


def _names_columns(values: list[str]) -> bool:
    """A repeated header names both required columns; a row that only says "email" is data."""
    names = {_HEADER_SPACES.sub("_", v.lower()) for v in values}
    return all(required in names for required in _REQUIRED)
