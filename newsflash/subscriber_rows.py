"""subscribers.csv as rows of cells, where one bad row stays that row's problem.

Python's csv module fails a whole file for one cell over its field limit, and lets one stray
quote swallow every row after it; a decoder fails a whole file for one Latin-1 byte. This
module turns bytes into text and text into `(line, cells)` rows so that each of those is
reported on its own line and every other row is still read. A file is read as it goes: how to
decode it is decided on a first pass over its bytes (`decide`), then its lines come one chunk
at a time (`text_lines`), so a list of a million partners is never held as bytes or text.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

__all__ = [
    "CHUNK",
    "Decision",
    "Decoded",
    "UnreadableRow",
    "decide",
    "decode",
    "did_you_mean",
    "from_legacy",
    "has_legacy_bytes",
    "header_line",
    "read_rows",
    "shown",
    "sniff_delimiter",
    "sniffed",
    "text_lines",
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


@dataclass(frozen=True, slots=True)
class Decision:
    """How a file's bytes become text: a codec and its error handler, decided on a first pass
    over the bytes that keeps no text, so the rows can then be read line by line."""

    codec: str
    errors: Literal["strict", "surrogateescape"]
    encoding: Encoding
    first_legacy_line: int | None = None


# Bytes read at a time: big enough that the per-chunk cost vanishes, small beside the list.
CHUNK = 1 << 16


def decide(stream: BinaryIO) -> Decision:
    """UTF-8 (BOM or not) or UTF-16 as Excel's "Unicode text" saves it; anything else is kept
    byte for byte (`surrogateescape`) so each cell can be judged alone: a file with no valid
    non-ASCII UTF-8 at all is "legacy" (Latin-1 throughout), one with both is "mixed".

    Reads `stream` from its start to its end; the caller seeks back to read the rows."""
    stream.seek(0)
    codec = _utf16_codec(stream.read(4))
    if codec is not None:
        stream.seek(0)
        if _decodes(stream, codec):
            return Decision(codec, "strict", "utf-16")
    stream.seek(0)
    return _utf8(stream)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _decodes(stream: BinaryIO, codec: str) -> bool:
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        for chunk in _chunks(stream):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False  # e.g. a Latin-1 file that happens to start with "ÿþ"
    return True


def _utf8(stream: BinaryIO) -> Decision:
    """Strict UTF-8 until the first byte that is not, whose line is noted; from there the rest
    is only searched for valid non-ASCII text, which makes the file "mixed", not "legacy"."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    seen_non_ascii = False
    if stream.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
        stream.seek(0)  # (a BOM is not the file's own non-ASCII text, nor a line's)
    chunks = _chunks(stream)
    for chunk in chunks:
        held = decoder.getstate()[0]  # the start of a character cut by the last chunk
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            bad_line = newlines + chunk.count(b"\n", 0, max(exc.start - len(held), 0)) + 1
            rest = itertools.chain([held + chunk], chunks)
            mixed = seen_non_ascii or _has_valid_non_ascii(rest)
            return Decision("utf-8", "surrogateescape", "mixed" if mixed else "legacy", bad_line)
        seen_non_ascii = seen_non_ascii or not text.isascii()
        newlines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:  # the file ends in the middle of a character
        encoding: Encoding = "mixed" if seen_non_ascii else "legacy"
        return Decision("utf-8", "surrogateescape", encoding, newlines + 1)
    return Decision("utf-8", "strict", "utf-8")


def _has_valid_non_ascii(chunks: Iterable[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    return any(_VALID_NON_ASCII.search(decoder.decode(chunk)) for chunk in chunks)


def _utf16_codec(head: bytes) -> str | None:
    """With a BOM, or without one when every other byte of the start is NUL (ASCII headers)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] != 0 and head[2] != 0:
        return "utf-16-le"
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] != 0 and head[3] != 0:
        return "utf-16-be"
    return None


def decode(data: bytes) -> Decoded:
    """The whole text at once, decided as `decide` decides (for `subscribers apply`, which
    rewrites the file and so needs it whole)."""
    decision = decide(io.BytesIO(data))
    text = data.decode(decision.codec, decision.errors).removeprefix("\ufeff")
    return Decoded(text, decision.encoding, decision.first_legacy_line)


def text_lines(stream: BinaryIO, decision: Decision) -> Iterator[str]:
    """The file's lines as `lines` gives them (ends kept), one chunk of bytes held at a time,
    with one leading BOM removed like `decode` does. A file rewritten since `decide` read it
    may no longer decode: UnicodeDecodeError, for the caller to report."""
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(decision.codec)(decision.errors)
    carry = ""
    started = False
    for chunk in _chunks(stream):
        text = carry + decoder.decode(chunk)
        if not started and text:
            text, started = text.removeprefix("\ufeff"), True
        # Up to the last line end that is certainly one: a "\r" at the very end of the chunk
        # may be the first half of a "\r\n" the next chunk finishes.
        cut = max(text.rfind("\n"), text.rfind("\r", 0, len(text) - 1)) + 1
        yield from lines(text[:cut])
        carry = text[cut:]
    text = carry + decoder.decode(b"", final=True)
    yield from lines(text if started else text.removeprefix("\ufeff"))


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

    def __init__(self, source: str | Iterable[str]) -> None:
        self._source = lines(source) if isinstance(source, str) else iter(source)
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


def read_rows(
    text: str | Iterable[str], delimiter: str
) -> Iterator[tuple[int, list[str] | UnreadableRow]]:
    """Every row with its first physical line; rows that cannot be split come as UnreadableRow.
    `text`: the text, or its lines as `lines` gives them (so a file can be read as it goes).

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


def sniffed(source: Iterator[str]) -> tuple[str, Iterator[str]]:
    """The delimiter, sniffed on the header (the first line that is not blank), and the lines
    again with one leading BOM removed (also when the text was decoded as plain UTF-8)."""
    before: list[str] = []
    first = next(source, "").removeprefix("\ufeff")
    for line in itertools.chain([first], source):
        if line:
            before.append(line)
        if line.strip():
            break
    return sniff_delimiter(before[-1] if before else ""), itertools.chain(before, source)


def shown(value: str, limit: int = 80) -> str:
    """A cell as messages quote it: repr'd (control characters visible), long ones cut."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
