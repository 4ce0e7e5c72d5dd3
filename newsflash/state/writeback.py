"""The suppression store's statuses, written into the bytes of subscribers.csv and nowhere else.

The list is the secretariat's file, saved by a spreadsheet in its own encoding, delimiter and
quoting: a write-back that re-serialised it would change every row. So the file is read with
the same reader a send uses (which rows count, which address each holds), each accepted row's
status cell is found in the text, and only that word is replaced. Every other byte, of every
row, stays as it was: the text is re-encoded with the file's own codec and BOM, which is
checked first to give back the original bytes exactly.

Pure: bytes and the store's view in, new bytes and what changed out (`plan_writeback`). The
file, the locks and the backup are `newsflash.state.apply`'s.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from newsflash.errors import NewsflashError
from newsflash.subscriber_rows import decode, lines, read_rows
from newsflash.subscribers import STATUS_WEIGHT, StatusCell, SubscriberProblem, locate_statuses

__all__ = [
    "REASON_STATUS",
    "Change",
    "Note",
    "StoreView",
    "WriteBack",
    "WriteBackError",
    "plan_writeback",
]

# What each suppression reason means in the list's status column. A SendGrid *block* (and any
# reason this version does not know) is deliberately absent: a block is a receiving server's
# temporary refusal (reputation, content, a full mailbox), which SendGrid retries and which the
# next edition may get through; the list has no status for "refused this time", and `bounced`
# would claim a dead address. The store still keeps the address out while the block is active.
REASON_STATUS: dict[str, str] = {
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "bounce": "bounced",
    "invalid": "bounced",
    "spamreport": "complained",
}

# A status cell apply may rewrite: optional spaces and quotes around one word (the reader
# strips spaces and accepts any case). Anything else in the cell is left to a human.
_STATUS_CELL = re.compile(r'( *"?\s*)([A-Za-z]+)(\s*"?\s*)')


class WriteBackError(NewsflashError):
    """subscribers.csv cannot be written back byte for byte; nothing was changed."""


@dataclass(frozen=True, slots=True)
class StoreView:
    """What the suppression store says of one address: reasons active, and reasons lifted."""

    active: frozenset[str] = frozenset()
    lifted: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Change:
    line: int
    address: str
    old: str
    new: str
    why: str


@dataclass(frozen=True, slots=True)
class Note:
    """A row left as it is although the store has something to say about its address."""

    line: int | None
    address: str
    message: str


@dataclass(frozen=True, slots=True)
class WriteBack:
    """The new bytes and the account of them; `written` is what apply has now written, by
    address, so a later lift undoes only a status apply wrote (never one typed by hand)."""

    data: bytes
    changes: tuple[Change, ...]
    notes: tuple[Note, ...]
    not_on_list: tuple[str, ...]  # suppressed addresses that no accepted row holds
    skipped_lines: tuple[int, ...]  # rows the reader skips (errors): left byte for byte
    written: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Decision:
    status: str | None  # what to write, or None to leave the cell
    why: str  # for the summary: a change's reason, or why a row is left ("" = nothing to say)


def plan_writeback(
    data: bytes,
    store: Mapping[str, StoreView],
    path: Path,
    written_before: Mapping[str, str] | None = None,
) -> WriteBack:
    """The file's bytes with the store's statuses in; `path` only names the file in messages.

    `written_before` is what earlier applies wrote (address -> status): a lifted suppression
    turns a row back to subscribed only where apply wrote its status and the row still says it.
    """
    located = locate_statuses(data, path)
    encode = _encoder(data, path)
    text = decode(data).text
    written = dict(written_before or {})
    held = located.subscribers.held
    edits: list[tuple[int, int, str]] = []
    changes: list[Change] = []
    notes: list[Note] = []
    wanted = [c for c in located.cells if c.key in store]
    spans = _status_spans(text, located.delimiter, wanted)
    for cell in wanted:
        decision = _decide(cell.status, store[cell.key], written.get(cell.key), cell.key in held)
        if decision.status is None:
            if decision.why:
                notes.append(Note(cell.line, cell.key, decision.why))
            continue
        span = spans.get(cell.line)
        if span is None:
            notes.append(Note(cell.line, cell.key, _UNLOCATED))
            continue
        start, end, old = span
        edits.append((start, end, _same_case(old, decision.status)))
        changes.append(Change(cell.line, cell.key, old, decision.status, decision.why))
    for change in changes:
        written[change.address] = change.new
    on_list = {c.key for c in located.cells}
    written = _still_said(written, located.cells, changes)
    return WriteBack(
        data=encode(_spliced(text, edits)) if edits else data,
        changes=tuple(changes),
        notes=tuple(notes),
        not_on_list=tuple(sorted(a for a, v in store.items() if v.active and a not in on_list)),
        skipped_lines=_error_lines(located.subscribers.problems),
        written=written,
    )


def _still_said(
    written: dict[str, str], cells: tuple[StatusCell, ...], changes: list[Change]
) -> dict[str, str]:
    """What apply wrote and the list still says: a row changed by hand since, or gone, or
    turned back to subscribed, is the secretariat's again."""
    after = {(c.line, c.address): c.new for c in changes}
    says: dict[str, set[str]] = {}
    for cell in cells:
        says.setdefault(cell.key, set()).add(after.get((cell.line, cell.key), cell.status))
    return {
        key: status
        for key, status in sorted(written.items())
        if status != "subscribed" and status in says.get(key, ())
    }


def _error_lines(problems: tuple[SubscriberProblem, ...]) -> tuple[int, ...]:
    return tuple(sorted({p.line for p in problems if p.severity == "error" and p.line}))


_UNLOCATED = (
    "the status cell of this row could not be found in the file's text (an unusual quoting), "
    "so it is left as it is; write the status by hand"
)


def _decide(current: str, view: StoreView, wrote: str | None, held: bool) -> _Decision:
    """Opt-outs only ever get stronger; a lift undoes only what apply itself wrote."""
    if view.active:
        statuses = {REASON_STATUS[r] for r in view.active if r in REASON_STATUS}
        if not statuses:
            return _Decision(
                None,
                f"suppressed for {', '.join(sorted(view.active))}, which has no status in the "
                f"list (a block is temporary), so the row keeps {current!r}; the address is not "
                "mailed while the suppression lasts",
            )
        new = max(statuses, key=STATUS_WEIGHT.__getitem__)
        if STATUS_WEIGHT[new] <= STATUS_WEIGHT[current]:
            return _Decision(None, "")  # the row already says as much, or more
        reasons = sorted(r for r in view.active if REASON_STATUS.get(r) == new)
        return _Decision(new, f"suppressed: {', '.join(reasons)}")
    lifted = {REASON_STATUS[r] for r in view.lifted if r in REASON_STATUS}
    if current == "subscribed" or current not in lifted:
        return _Decision(None, "")
    if wrote != current:
        return _Decision(
            None,
            f"its suppression was lifted, but {current!r} was not written by `subscribers "
            "apply` (typed by hand, or before apply existed), so it stays; change it by hand "
            "if the partner is to be mailed again",
        )
    if held:
        return _Decision(
            None,
            "its suppression was lifted, but the address also stands on a row with an error "
            "(see `newsflash subscribers`), which may be its opt-out; fix that row first",
        )
    return _Decision("subscribed", f"lifted: {', '.join(sorted(view.lifted))}")


def _same_case(old: str, new: str) -> str:
    """`Unsubscribed` for a list that writes `Subscribed`: the file keeps its own style."""
    if old.isupper():
        return new.upper()
    if old[:1].isupper():
        return new.capitalize()
    return new


def _spliced(text: str, edits: list[tuple[int, int, str]]) -> str:
    parts: list[str] = []
    pos = 0
    for start, end, word in sorted(edits):
        parts += [text[pos:start], word]
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _encoder(data: bytes, path: Path) -> Callable[[str], bytes]:
    """The file's own codec and BOM, or WriteBackError if they would not give its bytes back."""
    decoded = decode(data)
    prefix, codec = b"", "utf-8"
    if decoded.encoding == "utf-16":
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            prefix = data[:2]
            codec = "utf-16-le" if prefix == codecs.BOM_UTF16_LE else "utf-16-be"
        else:
            codec = "utf-16-le" if data[1] == 0 else "utf-16-be"
    elif data.startswith(codecs.BOM_UTF8):
        prefix = codecs.BOM_UTF8

    def encode(text: str) -> bytes:
        return prefix + text.encode(codec, "surrogateescape" if codec == "utf-8" else "strict")

    try:
        same = encode(decoded.text) == data
    except UnicodeEncodeError:
        same = False
    if not same:
        raise WriteBackError(
            f"{path} cannot be written back byte for byte (its {decoded.encoding} text does "
            "not encode to the same bytes), so it is not changed; save it again from your "
            "spreadsheet as CSV UTF-8 and rerun `newsflash subscribers apply`"
        )
    return encode


def _status_spans(
    text: str, delimiter: str, cells: list[StatusCell]
) -> dict[int, tuple[int, int, str]]:
    """Where each cell's status word stands in `text`: (start, end, word), by the row's line.

    Rows are the reader's own (`read_rows`, one physical line range each); within a row the
    fields are found by a pattern that is checked against the reader's cells, so a row this
    module would split differently from the reader is never touched.
    """
    by_line = {c.line: c for c in cells}
    if not by_line:
        return {}
    starts = _line_starts(text)
    field_re = _field_pattern(delimiter)
    spans: dict[int, tuple[int, int, str]] = {}
    for line, row in read_rows(text, delimiter):
        cell = by_line.get(line)
        if cell is None or not isinstance(row, list):
            continue
        found = _locate(text, starts[line - 1], row, cell, field_re, delimiter)
        if found is not None:
            spans[line] = found
    return spans


def _line_starts(text: str) -> list[int]:
    starts, pos = [], 0
    for physical in lines(text):
        starts.append(pos)
        pos += len(physical)
    starts.append(pos)
    return starts


def _field_pattern(delimiter: str) -> re.Pattern[str]:
    """One field as csv.reader (skipinitialspace, non-strict) reads it: a quoted value, which
    may hold delimiters, newlines and doubled quotes, and whatever follows its closing quote;
    or a plain value up to the delimiter or the end of the line."""
    d = re.escape(delimiter)
    return re.compile(rf'[ ]*(?:"(?:[^"]|"")*"[^{d}\r\n]*|[^{d}\r\n]*)')


def _fields(
    text: str, pos: int, field_re: re.Pattern[str], delimiter: str
) -> Iterator[re.Match[str]]:
    while True:
        match = field_re.match(text, pos)
        if match is None:  # pragma: no cover - the pattern matches the empty string
            return
        yield match
        pos = match.end()
        if text[pos : pos + 1] != delimiter:
            return
        pos += 1


def _value(raw: str) -> str:
    """A field's value as csv.reader gives it, for checking the pattern against the reader."""
    raw = raw.lstrip(" ")
    if not raw.startswith('"'):
        return raw
    closing = re.match(r'"((?:[^"]|"")*)"', raw)
    assert closing is not None  # the field pattern only yields closed quotes here
    return closing.group(1).replace('""', '"') + raw[closing.end() :]


def _locate(
    text: str,
    start: int,
    row: list[str],
    cell: StatusCell,
    field_re: re.Pattern[str],
    delimiter: str,
) -> tuple[int, int, str] | None:
    for index, match in enumerate(_fields(text, start, field_re, delimiter)):
        if index >= len(row) or _value(match.group()) != row[index]:
            return None
        if index == cell.column:
            word = _STATUS_CELL.fullmatch(match.group())
            if word is None or word.group(2).lower() != cell.status:
                return None
            return match.start() + word.start(2), match.start() + word.end(2), word.group(2)
    return None
