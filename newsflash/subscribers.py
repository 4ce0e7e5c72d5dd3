"""Read the partner list as people really export it, and never mail someone who opted out.

subscribers.csv comes out of spreadsheets and CRMs, so it arrives with a BOM, `;` or tab
delimiters, stray spaces, mixed-case and duplicate addresses, blank lines and sometimes in
Latin-1. Each of those is handled here; every row that cannot be trusted is skipped and reported
with its line number, so the person who owns the list can fix it at the source. Only a file that
cannot be read at all raises `SubscribersError`.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import email_validator
from email_validator import EmailNotValidError, validate_email
from rich.markup import escape
from rich.table import Table

from newsflash.errors import SubscribersError

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

# Only the fast path needs these; without them every address takes the full check.
_RFC2142_NAMES: frozenset[str] | None
try:
    from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

    _RFC2142_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
except ImportError:  # pragma: no cover - depends on email-validator internals
    _RFC2142_NAMES = None

__all__ = [
    "STATUSES",
    "Recipient",
    "SubscriberList",
    "SubscriberProblem",
    "load_subscribers",
    "parse_subscribers",
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

_MISSING_FILE_HINT = "create subscribers.csv with at least an `email` column; see README"

# When one address carries several statuses, the strongest opt-out signal is the one kept, so a
# complaint is never downgraded to a bounce. Anything above "subscribed" means "do not mail".
_STATUS_WEIGHT = {"subscribed": 0, "bounced": 1, "unsubscribed": 2, "complained": 3}

_SEGMENT_SPLIT = re.compile(r"[;,|\s]+")
# Lines as io.StringIO(text, newline="") yields them (ending in \r\n, \r or \n, untranslated).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_HEADER_SPACES = re.compile(r"[\s\-]+")

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
    """Decode the way spreadsheets actually save, then hand the text to the pure parser."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SubscribersError(f"{path} does not exist; {_MISSING_FILE_HINT}") from None
    except IsADirectoryError:
        raise SubscribersError(f"{path} is a directory, not a file; {_MISSING_FILE_HINT}") from None
    except OSError as exc:
        raise SubscribersError(
            f"cannot read {path} ({exc.strerror or exc}); check its permissions"
        ) from None

    text, warning = _decode(data, path)
    result = parse_subscribers(text, path)
    if warning is None:
        return result
    return dataclasses.replace(result, problems=(warning, *result.problems))


def _decode(data: bytes, path: Path) -> tuple[str, SubscriberProblem | None]:
    """UTF-8 first (with or without BOM); Excel's "Unicode text" is UTF-16; else Windows Latin-1."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError:
            pass  # A Latin-1 file that happens to start with "ÿþ"; fall through.
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # never fails: every byte is a character
    warning = SubscriberProblem(
        path=path,
        line=bad_line,
        message=(
            "the file is not UTF-8 (first non-UTF-8 byte on this line), so it was read as "
            "Latin-1 (Windows-1252); check that accented names look right and save the file "
            "as UTF-8 (in Excel: Save As > CSV UTF-8)"
        ),
        severity="warning",
    )
    return text, warning


def parse_subscribers(text: str, path: Path) -> SubscriberList:
    """Pure so tests and benchmarks can feed text directly; the path is only used in messages."""
    return _Parser(text, Path(path)).run()


class _Parser:
    """Holds per-file state (problems, merge index, domain cache) for one pass over the rows."""

    def __init__(self, text: str, path: Path) -> None:
        self.text = text.removeprefix("\ufeff")  # also when the caller decoded as plain utf-8
        self.path = path
        self.problems: list[SubscriberProblem] = []
        self.recipients: list[Recipient] = []
        self.index_by_key: dict[str, int] = {}
        self.blank_language: set[str] = set()
        self.domain_cache: dict[str, str | None] = {}
        self.skipped_addresses: dict[str, int] = {}  # address on a skipped row -> its line

    def problem(
        self, line: int | None, message: str, severity: Literal["error", "warning"]
    ) -> None:
        self.problems.append(SubscriberProblem(self.path, line, message, severity))

    def run(self) -> SubscriberList:
        delimiter = _sniff_delimiter(self.text)
        reader = csv.reader(_lines(self.text), delimiter=delimiter, skipinitialspace=True)
        try:
            self._read(reader)
        except csv.Error as exc:
            line = reader.line_num or 1
            raise SubscribersError(
                f"{self.path}:{line}: the file is not valid CSV ({exc}); "
                'check for an unclosed quote (") on or before this line'
            ) from None
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

    def _read(self, reader: _CsvReader) -> None:
        """One loop, no per-row closures: this is the hot path for 100k-row lists.

        A row starts one line after the previous row ended (`line_num` counts lines consumed),
        which stays right when a quoted value spans lines. Rows of only spaces or delimiters are
        what spreadsheets leave below the data, so they are skipped like blank lines.
        """
        previous_end = 0
        header_line, header = 0, []
        for row in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if "".join(row).strip():
                header_line, header = start, row
                break
        if header_line == 0:
            raise SubscribersError(f"{self.path} is empty; {_MISSING_FILE_HINT}")
        columns = self._columns(header_line, header)
        width = len(header)
        # Absent columns point at a trailing "" slot, so every lookup is a plain index.
        positions = tuple(columns.get(name, width) for name in COLUMNS)
        has_status = "status" in columns
        padding = [""] * (width + 1)
        for row in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not "".join(row).strip():
                continue
            if len(row) > width:
                if "".join(row[width:]).strip():
                    self._too_many_values(start, len(row), width)
                    continue
                del row[width:]
            values = [v.strip() for v in row]
            values += padding[len(values) :]
            self._row(start, values, positions, has_status)

    def _columns(self, line: int, header: list[str]) -> dict[str, int]:
        """Map known column names to positions; anything else is reported but never fatal."""
        columns: dict[str, int] = {}
        for position, raw in enumerate(header):
            name = _HEADER_SPACES.sub("_", raw.strip().strip("\ufeff").lower())
            if not name:
                continue  # trailing delimiter from a spreadsheet; nothing to map
            if name not in COLUMNS:
                self.problem(
                    line,
                    f"unknown column {raw.strip()!r} is ignored{_did_you_mean(name, COLUMNS)}; "
                    f"known columns are {', '.join(COLUMNS)}",
                    "warning",
                )
            elif name in columns:
                self.problem(
                    line,
                    f"column {name!r} appears more than once; only the first is used, "
                    "so delete or rename the other",
                    "warning",
                )
            else:
                columns[name] = position
        if "email" not in columns:
            found = [h.strip().strip("\ufeff") for h in header if h.strip()]
            by_lower = {f.lower(): f for f in found}
            closest = difflib.get_close_matches("email", list(by_lower), n=1)
            hint = f"; rename {by_lower[closest[0]]!r} to `email`" if closest else ""
            shown = ", ".join(repr(f) for f in found) if found else "none"
            raise SubscribersError(
                f"{self.path}:{line}: no `email` column (columns found: {shown}){hint}; "
                "the first line must name the columns, with at least `email`"
            )
        return columns

    def _too_many_values(self, line: int, count: int, width: int) -> None:
        self.problem(
            line,
            f"this row has {count} values but the header has {width} columns, so the "
            "values cannot be matched to columns; put quotes around any value that contains "
            'the delimiter (e.g. "ACME, Inc.")',
            "error",
        )

    def _row(
        self, line: int, values: list[str], positions: tuple[int, ...], has_status: bool
    ) -> None:
        i_email, i_first, i_last, i_org, i_segments, i_status, i_language = positions
        errors: list[str] = []
        email = self._normalise_email(values[i_email], errors)
        status = self._status(values[i_status], has_status, errors)
        if email is None or status is None:
            for message in errors:
                self.problem(line, message, "error")
            if email is not None:
                self.skipped_addresses.setdefault(email.lower(), line)
            return

        raw_language = values[i_language].lower()
        recipient = Recipient(
            email=email,
            # A cell with a line break (a spreadsheet's Alt+Enter) would break mail headers.
            first_name=" ".join(values[i_first].split()),
            last_name=" ".join(values[i_last].split()),
            organisation=" ".join(values[i_org].split()),
            segments=_split_segments(values[i_segments]),
            status=status,
            language=raw_language or DEFAULT_LANGUAGE,
            line=line,
        )
        key = email.lower()
        existing = self.index_by_key.get(key)
        if existing is None:
            self.index_by_key[key] = len(self.recipients)
            self.recipients.append(recipient)
            if not raw_language:
                self.blank_language.add(key)
        else:
            self._merge(existing, key, recipient, bool(raw_language))

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
                f"{raw!r} is not a valid email address ({exc}); correct it or delete the row"
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

    def _status(self, raw: str, has_column: bool, errors: list[str]) -> str | None:
        if not has_column:
            return "subscribed"  # a plain address list means everyone on it opted in
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
                f"unknown status {raw!r}{_did_you_mean(status, STATUSES)}; write one of {choices}"
            )
        return None

    def _merge(self, index: int, key: str, later: Recipient, later_has_language: bool) -> None:
        """First row wins for names; segments add up; the strongest opt-out status wins."""
        first = self.recipients[index]
        status = first.status
        status_note = ""
        if _STATUS_WEIGHT[later.status] > _STATUS_WEIGHT[first.status]:
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


def _lines(text: str) -> Iterator[str]:
    """The lines of `text`, lazily: io.StringIO would first copy the whole file into a buffer
    of 4 bytes a character (36 MB for a 100k-row list), which set the peak memory of a send."""
    return (m.group() for m in _LINE.finditer(text))


def _sniff_delimiter(text: str) -> str:
    """Sniff on the header only: it is short, has no quoted commas, and is always present."""
    header = next((line for line in _lines(text) if line.strip()), "")
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
