"""subscribers.csv as rows of cells, where one bad row stays that row's problem.

Python's csv module fails a whole file for one cell over its field limit, and lets one stray
quote swallow every row after it; a decoder fails a whole file for one Latin-1 byte. This
module turns bytes into text and text into `(line, cells)` rows so that each of those is
reported on its own line and every other row is still read.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Decoded",
    "UnreadableRow",
    "decode",
    "did_you_mean",
    "from_legacy",
    "has_legacy_bytes",
    "header_line",
    "read_rows",
    "shown",
    "sniff_delimiter",
]

Encoding = Literal["utf-8", "utf-16", "legacy", "mixed"]

# Lines as io.StringIO(text, newline="") yields them (ending in \r\n, \r or \n, untranslated).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")

# Bytes that are not UTF-8 are kept by "surrogateescape" as U+DC80..U+DCFF, so the CSV can be
# split into cells first and each cell's stray bytes decided on afterwards.
_ESCAPED = re.compile("[\udc80-\udcff]")
_VALID_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")


def _legacy_char(byte: int) -> str:
    """Windows-1252 where it defines the byte, else Latin-1 (every byte is a character there)."""
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return bytes([byte]).decode("latin-1")


_LEGACY = {0xDC00 + b: _legacy_char(b) for b in range(0x80, 0x100)}

# A quoted value may span lines (Alt+Enter in a spreadsheet cell), but a row that runs on for
# this many lines, or over a line with an address on it, is a stray quote eating other rows.
MAX_ROW_LINES = 20


@dataclass(frozen=True, slots=True)
class Decoded:
    """The file's text and how it was decoded; `first_legacy_line` is set unless pure UTF."""

    text: str
    encoding: Encoding
    first_legacy_line: int | None = None


def decode(data: bytes) -> Decoded:
    """UTF-8 (BOM or not) or UTF-16 as Excel's "Unicode text" saves it; anything else is kept
    byte for byte (`surrogateescape`) so each cell can be judged alone: a file with no valid
    non-ASCII UTF-8 at all is "legacy" (Latin-1 throughout), one with both is "mixed"."""
    utf16 = _utf16(data)
    if utf16 is not None:
        return Decoded(utf16, "utf-16")
    try:
        return Decoded(data.decode("utf-8-sig"), "utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    encoding: Encoding = "mixed" if _VALID_NON_ASCII.search(text) else "legacy"
    return Decoded(text, encoding, bad_line)


def _utf16(data: bytes) -> str | None:
    """With a BOM, or without one when every other byte of the start is NUL (ASCII headers)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0 and data[2] != 0:
        codec = "utf-16-le"
    elif len(data) >= 4 and data[0] == 0 and data[2] == 0 and data[1] != 0 and data[3] != 0:
        codec = "utf-16-be"
    else:
        return None
    try:
        return data.decode(codec).removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None  # e.g. a Latin-1 file that happens to start with "ÿþ"


def has_legacy_bytes(value: str) -> bool:
    return _ESCAPED.search(value) is not None


def from_legacy(value: str) -> str:
    """The cell's stray bytes read as Windows-1252; its valid UTF-8 stays as it was."""
    return value.translate(_LEGACY)


def lines(text: str) -> Iterator[str]:
    """The lines of `text`, lazily: io.StringIO would first copy the whole file into a buffer
    of 4 bytes a character (36 MB for a 100k-row list), which set the peak memory of a send."""
    return (m.group() for m in _LINE.finditer(text))


def header_line(text: str) -> str:
    return next((line for line in lines(text) if line.strip()), "")


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A row the csv module could not split into cells; `text` is kept to find its address."""

    line: int
    message: str
    text: str


class _RunawayQuote(Exception):
    """Raised from inside csv.reader's line supply to stop a quote swallowing more rows."""


class _Lines:
    """The physical lines csv.reader pulls, counted, kept per row, and able to be given back."""

    def __init__(self, text: str) -> None:
        self._source = lines(text)
        self._back: list[str] = []  # given back, last line first
        self.taken: list[str] = []  # the lines of the row being read
        self.number = 0  # physical line number of the last line taken

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._source)
        self.number += 1
        taken = self.taken
        taken.append(line)
        if len(taken) > 1 and ("@" in line or len(taken) > MAX_ROW_LINES):
            raise _RunawayQuote
        return line

    def give_back_all_but_first(self) -> None:
        rest = self.taken[1:]
        self._back.extend(reversed(rest))
        self.number -= len(rest)
        del self.taken[1:]


def read_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | UnreadableRow]]:
    """Every row with its first physical line; rows that cannot be split come as UnreadableRow.

    A row whose quote does not close (before a line with an address on it, within
    MAX_ROW_LINES lines, or before the end of the file) is reported on its first line, and
    the lines after it are read again as rows of their own, so no partner is swallowed.
    """
    source = _Lines(text)
    reader = csv.reader(source, delimiter=delimiter, skipinitialspace=True)
    while True:
        source.taken.clear()
        start = source.number + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except _RunawayQuote:
            yield start, _stray_quote(source)
            continue
        except csv.Error as exc:
            if len(source.taken) > 1:
                yield start, _stray_quote(source)
            else:
                yield start, UnreadableRow(start, _too_long(exc), source.taken[0])
            continue
        if len(source.taken) > 1 and _quote_left_open(source.taken, delimiter):
            yield start, _stray_quote(source)
            continue
        yield start, row


def _stray_quote(source: _Lines) -> UnreadableRow:
    end = source.number
    first = source.taken[0]
    source.give_back_all_but_first()
    line = source.number
    return UnreadableRow(
        line,
        f'a quote (") opened on this line is not closed on it (the row would run on to line '
        f"{end}), so this row is skipped and the lines after it are read as rows of their "
        'own; remove the stray quote, or close it (a quote inside a value is written "")',
        first,
    )


def _too_long(exc: csv.Error) -> str:
    return (
        f"a value on this line is too long to be a name or an address ({exc}), so the row is "
        "skipped; it is usually a paste gone wrong: shorten the cell"
    )


def _quote_left_open(taken: list[str], delimiter: str) -> bool:
    """True when the row only ended because the file did (csv's non-strict mode accepts it)."""
    strict = csv.reader(iter(taken), delimiter=delimiter, skipinitialspace=True, strict=True)
    try:
        for _ in strict:
            pass
    except csv.Error:
        return True
    return False


def sniff_delimiter(text: str) -> str:
    """Sniff on the header only: it is short, has no quoted commas, and is always present."""
    header = header_line(text)
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # a single column ("email") has no delimiter to find
    return delimiter if delimiter in header else ","


def shown(value: str, limit: int = 80) -> str:
    """A cell as messages quote it: repr'd (control characters visible), long ones cut."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
