"""Read the partner list as people really export it, and never mail someone who opted out.

subscribers.csv comes out of spreadsheets and CRMs, so it arrives with a BOM, `;` or tab
delimiters, stray spaces, mixed-case and duplicate addresses, blank lines and sometimes in
Latin-1. Each of those is handled here; every row that cannot be trusted is skipped and reported
with its line number, so the person who owns the list can fix it at the source, and an address
that also stands on a skipped row is held back (that row may be its opt-out). A file that cannot
be read at all, or cannot say who opted out (no `status` column), raises `SubscribersError`.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import email_validator
from email_validator import EmailNotValidError, validate_email
from rich.markup import escape
from rich.table import Table

from newsflash.errors import SubscribersError
from newsflash.subscriber_rows import (
    UnreadableRow,
    decode,
    from_legacy,
    has_legacy_bytes,
    header_line,
    read_rows,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

# Only the fast path needs these; without them every address takes the full check.
_RFC2142_NAMES: frozenset[str] | None
try:
    from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

    _RFC2142_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
except ImportError:  # pragma: no cover - depends on email-validator internals
    _RFC2142_NAMES = None

__all__ = [
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

STATUSES: tuple[str, ...] = ("subscribed", "unsubscribed", "bounced", "complained")

COLUMNS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "organisation",
    "segments",
    "status",
    "language",
)

DEFAULT_LANGUAGE = "en"

_MISSING_FILE_HINT = (
    "create subscribers.csv with at least an `email` and a `status` column; see README"
)

# The columns a list cannot be sent without, and what each one answers.
_REQUIRED = {"email": "whom to mail", "status": "who unsubscribed, bounced or complained"}

# When one address carries several statuses, the strongest opt-out signal is the one kept, so a
# complaint is never downgraded to a bounce (nor by `subscribers apply`). Anything above
# "subscribed" means "do not mail".
STATUS_WEIGHT: dict[str, int] = {"subscribed": 0, "bounced": 1, "unsubscribed": 2, "complained": 3}

_SEGMENT_SPLIT = re.compile(r"[;,|\s]+")
_HEADER_SPACES = re.compile(r"[\s\-]+")
# Invisible codes that must not reach a To: header: C0/C1 controls other than the tab and line
# breaks that whitespace-folding already handles, and the bidi embeddings and overrides.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MAX_UNKNOWN_COLUMNS = 5
_FORMULA = ("=", "+", "@")  # what a spreadsheet would evaluate at the start of a cell
# Splits a skipped row into words, one of which may be an address to hold (linear, no regex
# backtracking on a 100k-character cell).
_TOKEN_SPLIT = re.compile(r"[\s,;|\"'<>()\[\]\x1f]+")

# A plain ASCII dot-atom address: the overwhelming majority of real rows, and the only shape the
# fast path in `_Parser._fast_normalise` will vouch for.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_PLAIN_ADDRESS = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([A-Za-z0-9.\-]+)")
_PLAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")
_MAX_ADDRESS_LENGTH = 254  # RFC 5321 via email-validator; ASCII, so characters == octets
_MAX_LOCAL_LENGTH = 64  # only enforced by email-validator in strict mode; stay out of that


@dataclass(frozen=True, slots=True)
class Recipient:
    """One person to mail (or, by status, to never mail), after duplicates are merged."""

    email: str
    first_name: str
    last_name: str
    organisation: str
    segments: frozenset[str]
    status: str
    language: str
    line: int

    @property
    def recipient_id(self) -> str:
        """Case-insensitive so a re-typed address keeps its ledger history and SendGrid args."""
        return recipient_id(self.email)


def recipient_id(email: str) -> str:
    """Exposed separately so the ledger can key a bounce webhook without building a Recipient."""
    return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SubscriberProblem:
    """A row-level finding; errors skip the row, warnings keep it, so the send can still go."""

    path: Path
    line: int | None
    message: str
    severity: Literal["error", "warning"]

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class SubscriberList:
    """Everything the file said, good rows and problems together, so callers decide what blocks."""

    path: Path
    recipients: tuple[Recipient, ...]
    problems: tuple[SubscriberProblem, ...]
    held: frozenset[str] = frozenset()
    """Lowercased addresses that also stand on a skipped row (e.g. a misspelt status): that
    row may be an opt-out, so the address is not sent to until the row is fixed."""

    def audience(self, segments: Iterable[str] = ()) -> tuple[Recipient, ...]:
        """Subscribed recipients in any given segment; no segments = every subscribed recipient.

        Status is checked here rather than left to callers so that an opted-out address can
        never reach a send by someone forgetting the filter.
        """
        wanted = _normalise_segment_filter(segments)
        return tuple(
            r
            for r in self.recipients
            if r.status == "subscribed"
            and r.email.lower() not in self.held
            and (not wanted or not wanted.isdisjoint(r.segments))
        )

    def counts(self) -> dict[str, int]:
        """Every status is present, even at zero, so the CLI table has a stable shape."""
        result = dict.fromkeys(STATUSES, 0)
        for r in self.recipients:
            result[r.status] += 1
        result["total"] = len(self.recipients)
        return result


def load_subscribers(path: Path) -> SubscriberList:
    """Decode the way spreadsheets actually save, then hand the text to the parser."""
    path = Path(path)
    return _parser_for(read_list(path), path).run()


def read_list(path: Path) -> bytes:
    """The file's bytes, or SubscribersError saying why they cannot be had."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SubscribersError(f"{path} does not exist; {_MISSING_FILE_HINT}") from None
    except IsADirectoryError:
        raise SubscribersError(f"{path} is a directory, not a file; {_MISSING_FILE_HINT}") from None
    except OSError as exc:
        raise SubscribersError(
            f"cannot read {path} ({exc.strerror or exc}); check its permissions"
        ) from None


def _parser_for(data: bytes, path: Path) -> _Parser:
    decoded = decode(data)
    parser = _Parser(decoded.text, path, legacy=decoded.encoding in ("legacy", "mixed"))
    if decoded.encoding == "legacy":
        parser.problem(decoded.first_legacy_line, _LEGACY_FILE, "warning")
    elif decoded.encoding == "mixed":
        parser.mixed = True  # one warning per row: the rest of the file is good UTF-8
    return parser


@dataclass(frozen=True, slots=True)
class StatusCell:
    """Where a row the reader accepted keeps its status, so `subscribers apply` can change
    that cell and nothing else; rows the reader skips have none, and so are never touched."""

    line: int  # the row's first physical line
    key: str  # its address as the store keeps it (normalised, lowercased)
    status: str  # what the row says, lowercased
    column: int  # the status cell's position in the row (a repeated header may move it)


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


_LEGACY_FILE = (
    "the file is not UTF-8 (first non-UTF-8 byte on this line), so it was read as "
    "Latin-1 (Windows-1252); check that accented names look right and save the file "
    "as UTF-8 (in Excel: Save As > CSV UTF-8)"
)


def parse_subscribers(text: str, path: Path) -> SubscriberList:
    """Pure so tests and benchmarks can feed text directly; the path is only used in messages."""
    return _Parser(text, Path(path)).run()


class _Parser:
    """Holds per-file state (problems, merge index, domain cache) for one pass over the rows."""

    def __init__(self, text: str, path: Path, *, legacy: bool = False) -> None:
        self.text = text.removeprefix("\ufeff")  # also when the caller decoded as plain utf-8
        self.path = path
        self.legacy = legacy  # cells may hold bytes that were not UTF-8 (see subscriber_rows)
        self.mixed = False  # ...in a file that is otherwise UTF-8: warn on each such row
        self.problems: list[SubscriberProblem] = []
        self.recipients: list[Recipient] = []
        self.index_by_key: dict[str, int] = {}
        self.blank_language: set[str] = set()
        self.domain_cache: dict[str, str | None] = {}
        self.skipped_addresses: dict[str, int] = {}  # address on a skipped row -> its line
        self.cells: list[StatusCell] | None = None  # kept only for locate_statuses

    def problem(
        self, line: int | None, message: str, severity: Literal["error", "warning"]
    ) -> None:
        self.problems.append(SubscriberProblem(self.path, line, message, severity))

    def run(self) -> SubscriberList:
        self.delimiter = _sniff_delimiter(self.text)
        self._read(read_rows(self.text, self.delimiter))
        held = frozenset(k for k in self.skipped_addresses if k in self.index_by_key)
        for key in sorted(held, key=lambda k: self.skipped_addresses[k]):
            kept = self.recipients[self.index_by_key[key]]
            self.problem(
                kept.line,
                f"{kept.email} also stands on line {self.skipped_addresses[key]}, which has an "
                "error and was skipped; it is not sent to until that row is fixed (it may be "
                "an opt-out)",
                "warning",
            )
        return SubscriberList(self.path, tuple(self.recipients), tuple(self.problems), held)

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
        raise SubscribersError(f"{self.path} is empty; {_MISSING_FILE_HINT}")

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
                f"unknown column {_shown(raw)} is ignored{_did_you_mean(name, COLUMNS)}; "
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
        hint = f"; rename {_shown(by_lower[closest[0]])} to `{required}`" if closest else ""
        shown = ", ".join(_shown(f) for f in found[:20]) if found else "none"
        if len(found) > 20:
            shown += f" and {len(found) - 20} more"
        if required == "email":
            todo = "the first line must name the columns, with at least `email` and `status`"
        else:
            todo = (
                f"without it the list cannot say {why}, so it is not sent to: add a `status` "
                "column and write `subscribed` for each partner who agreed to receive the "
                "newsletter (or unsubscribed, bounced, complained)"
            )
        raise SubscribersError(
            f"{self.path}:{line}: no `{required}` column (columns found: {shown}){hint}; {todo}"
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
                f"the address {_shown(repaired[i_email])} is not valid UTF-8 on this line, and an "
                "address is never guessed, so the row is skipped; retype it and save the file "
                "as UTF-8 (in Excel: Save As > CSV UTF-8)",
                "error",
            )
            return None
        if self.mixed:
            changed = [
                f"{name} {_shown(repaired[i])}"
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
            if "@" in token and len(token) <= _MAX_ADDRESS_LENGTH:
                email = self._normalise_email(token, [])
                key = (email or token).lower()
                self.skipped_addresses.setdefault(key, line)

    def _row(
        self, line: int, values: list[str], positions: tuple[int, ...], controls: bool
    ) -> None:
        i_email, i_first, i_last, i_org, i_segments, i_status, i_language, _ = positions
        errors: list[str] = []
        email = self._normalise_email(values[i_email], errors)
        status = self._status(values[i_status], errors)
        if email is None or status is None:
            for message in errors:
                self.problem(line, message, "error")
            self._hold(line, "\x1f".join(values))
            return

        raw_language = values[i_language].lower()
        names = [values[i_first], values[i_last], values[i_org]]
        if controls or any(n.startswith(_FORMULA) for n in names):
            names = self._clean_names(line, names)
        recipient = Recipient(
            email=email,
            # A cell with a line break (a spreadsheet's Alt+Enter) would break mail headers.
            first_name=" ".join(names[0].split()),
            last_name=" ".join(names[1].split()),
            organisation=" ".join(names[2].split()),
            segments=_split_segments(values[i_segments]),
            status=status,
            language=raw_language or DEFAULT_LANGUAGE,
            line=line,
        )
        key = email.lower()
        if self.cells is not None:
            self.cells.append(StatusCell(line, key, status, i_status))
        existing = self.index_by_key.get(key)
        if existing is None:
            self.index_by_key[key] = len(self.recipients)
            self.recipients.append(recipient)
            if not raw_language:
                self.blank_language.add(key)
        else:
            self._merge(existing, key, recipient, bool(raw_language))

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
                    f"To: header), removed: now {_shown(' '.join(value.split()))}; check the cell",
                    "warning",
                )
            elif value.startswith(_FORMULA):
                self.problem(
                    line,
                    f"{column} {_shown(value)} looks like a spreadsheet formula; it is used as "
                    "plain text in the greeting and the To: header, so check the cell",
                    "warning",
                )
            cleaned.append(value)
        return cleaned

    def _normalise_email(self, raw: str, errors: list[str]) -> str | None:
        if not raw:
            errors.append("the email address is empty; fill it in or delete the row")
            return None
        fast = self._fast_normalise(raw)
        if fast is not None:
            return fast
        try:
            # SendGrid takes ASCII addresses only: an international domain goes as punycode,
            # and a non-ASCII local part (SMTPUTF8) is refused here, not lost after a 202.
            valid = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            errors.append(
                f"{_shown(raw)} is not a valid email address ({exc}){self._delimiter_hint(raw)}; "
                "correct it or delete the row"
            )
            return None
        return valid.ascii_email or valid.normalized

    def _fast_normalise(self, raw: str) -> str | None:
        """email-validator's answer for plain ASCII addresses, without its per-character checks.

        Full validation costs ~20 µs an address (2 s per 100k rows), nearly all of it Unicode
        checks on the domain that cannot fail for ASCII. For a dot-atom local part of at most
        64 characters it returns the local part unchanged, except RFC 2142 role names, which it
        lowercases. The domain test only ever says "certainly valid" or "ask email-validator",
        so anything unusual still gets the full check and its error message.
        """
        if _RFC2142_NAMES is None or len(raw) > _MAX_ADDRESS_LENGTH:
            return None
        match = _PLAIN_ADDRESS.fullmatch(raw)
        if match is None:
            return None
        local, domain = match.groups()
        if len(local) > _MAX_LOCAL_LENGTH or local.lower() in _RFC2142_NAMES:
            return None
        try:
            plain = self.domain_cache[domain]
        except KeyError:
            plain = self.domain_cache[domain] = _plain_domain(domain)
        return None if plain is None else f"{local}@{plain}"

    def _delimiter_hint(self, raw: str) -> str:
        others = [d for d in ",;\t|" if d != self.delimiter and d in raw]
        if not others:
            return ""
        return (
            f"; this row seems to use {others[0]!r} between values while the header uses "
            f"{self.delimiter!r}: use one delimiter throughout"
        )

    def _status(self, raw: str, errors: list[str]) -> str | None:
        status = raw.lower()
        if status in STATUSES:
            return status
        choices = ", ".join(STATUSES)
        if not status:
            errors.append(
                f"the status is empty; write one of {choices} (an empty status is not "
                "assumed to be subscribed, in case the person opted out)"
            )
        else:
            errors.append(
                f"unknown status {_shown(raw)}{_did_you_mean(status, STATUSES)}; "
                f"write one of {choices}"
            )
        return None

    def _merge(self, index: int, key: str, later: Recipient, later_has_language: bool) -> None:
        """First row wins for names; segments add up; the strongest opt-out status wins."""
        first = self.recipients[index]
        status = first.status
        status_note = ""
        if STATUS_WEIGHT[later.status] > STATUS_WEIGHT[first.status]:
            status = later.status
            status_note = (
                f"; status {later.status!r} from line {later.line} wins over "
                f"{first.status!r} so nobody who opted out is mailed"
            )
        elif later.status != first.status:
            status_note = (
                f"; status {first.status!r} from line {first.line} wins over {later.status!r}"
            )
        language = first.language
        if key in self.blank_language and later_has_language:
            language = later.language
            self.blank_language.discard(key)
        self.recipients[index] = dataclasses.replace(
            first,
            first_name=first.first_name or later.first_name,
            last_name=first.last_name or later.last_name,
            organisation=first.organisation or later.organisation,
            segments=first.segments | later.segments,
            status=status,
            language=language,
        )
        self.problem(
            later.line,
            f"{later.email} also appears on line {first.line}; merged into line {first.line} "
            f"(names from line {first.line} kept where given, segments combined{status_note}); "
            "delete one of the two rows",
            "warning",
        )


def _names_columns(values: list[str]) -> bool:
    """A repeated header names both required columns; a row that only says "email" is data."""
    names = {_HEADER_SPACES.sub("_", v.lower()) for v in values}
    return all(required in names for required in _REQUIRED)


def _plain_domain(domain: str) -> str | None:
    """The lowercased domain if email-validator certainly accepts it as is, else None.

    Mirrors its rules for ASCII names: labels of 1-63 letters, digits and inner hyphens; at least
    one dot; a TLD ending in a letter; no special-use name. Labels with "--" in 3rd-4th place are
    Punycode or reserved, which email-validator decodes or rejects, so they go to it.
    """
    lowered = domain.lower()
    labels = lowered.split(".")
    if len(labels) < 2 or not lowered[-1].isalpha():
        return None
    for label in labels:
        if label[2:4] == "--" or _PLAIN_LABEL.fullmatch(label) is None:
            return None
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if lowered == special or lowered.endswith("." + special):
            return None
    return lowered


def _sniff_delimiter(text: str) -> str:
    """Sniff on the header only: it is short, has no quoted commas, and is always present."""
    header = header_line(text)
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # a single column ("email") has no delimiter to find
    return delimiter if delimiter in header else ","


@functools.lru_cache(maxsize=4096)
def _split_segments(raw: str) -> frozenset[str]:
    """Cached because a list repeats a handful of segment strings across thousands of rows."""
    segments = set(_SEGMENT_SPLIT.split(raw.lower()))
    segments.discard("")
    return frozenset(segments)


def _normalise_segment_filter(segments: Iterable[str]) -> frozenset[str]:
    """Accept a bare string too, so audience("wg1") does not silently mean segments w, g and 1."""
    if isinstance(segments, str):
        segments = (segments,)
    wanted: set[str] = set()
    for s in segments:
        wanted |= _split_segments(s)
    return frozenset(wanted)


def _shown(value: str, limit: int = 80) -> str:
    """A cell as messages quote it: repr'd (control characters visible), long ones cut."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def summary_table(
    sl: SubscriberList, segments: Iterable[str] = (), *, max_problems: int = 50
) -> Table:
    """What `newsflash subscribers` prints: enough to decide whether the list is safe to send to.

    Problems are capped because a list exported with the wrong delimiter can produce one per
    row, and the first few are what point at the cause.
    """
    wanted = _normalise_segment_filter(segments)
    table = Table(title=f"Subscribers in {escape(str(sl.path))}", show_header=True)
    table.add_column("")
    table.add_column("count", justify="left")

    counts = sl.counts()
    for status in STATUSES:
        table.add_row(status, str(counts[status]))
    table.add_row("[bold]total[/bold]", f"[bold]{counts['total']}[/bold]")
    table.add_section()

    by_segment: dict[str, list[int]] = {}
    for r in sl.recipients:
        for s in r.segments:
            tally = by_segment.setdefault(s, [0, 0])
            tally[1] += 1
            if r.status == "subscribed":
                tally[0] += 1
    for s in sorted(by_segment):
        subscribed, total = by_segment[s]
        table.add_row(f"segment {escape(s)}", f"{subscribed} subscribed of {total}")
    for s in sorted(wanted - by_segment.keys()):
        table.add_row(f"[red]segment {escape(s)}[/red]", "[red]no one in this segment[/red]")
    if by_segment or wanted:
        table.add_section()

    audience = sl.audience(wanted)
    label = "audience (" + (", ".join(sorted(wanted)) if wanted else "all subscribed") + ")"
    table.add_row(f"[bold]{escape(label)}[/bold]", f"[bold]{len(audience)}[/bold]")
    table.add_section()

    errors = sum(1 for p in sl.problems if p.severity == "error")
    warnings = len(sl.problems) - errors
    table.add_row("problems", f"{errors} error(s), {warnings} warning(s)")
    for p in sl.problems[:max_problems]:
        colour = "red" if p.severity == "error" else "yellow"
        where = f"line {p.line}" if p.line is not None else "file"
        table.add_row(f"[{colour}]{where} {p.severity}[/{colour}]", escape(p.message))
    if len(sl.problems) > max_problems:
        table.add_row("…", f"{len(sl.problems) - max_problems} more problem(s) not shown")
    return table
