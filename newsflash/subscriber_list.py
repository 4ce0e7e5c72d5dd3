"""The partner list once read: who is on it, with what status, and who a send may mail.

`SubscriberList.audience` is the one audience rule (subscribed, not held, in a segment asked
for); `summary_table` is what `newsflash subscribers` prints. Reading the file is
subscribers.py's (over subscriber_parser.py and subscriber_rows.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.markup import escape
from rich.table import Table

from newsflash.recipient_ids import recipient_id
from newsflash.subscriber_rows import did_you_mean, shown

__all__ = [
    "COLUMNS",
    "DEFAULT_LANGUAGE",
    "STATUSES",
    "STATUS_WEIGHT",
    "Recipient",
    "StatusCell",
    "SubscriberList",
    "SubscriberProblem",
    "recipient_id",
    "segment_filter",
    "split_segments",
    "status_of",
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

# When one address carries several statuses, the strongest opt-out signal is the one kept, so a
# complaint is never downgraded to a bounce (nor by `subscribers apply`). Anything above
# "subscribed" means "do not mail".
STATUS_WEIGHT: dict[str, int] = {"subscribed": 0, "bounced": 1, "unsubscribed": 2, "complained": 3}

_STATUS_NAMES = {s: s for s in STATUSES}
_SEGMENT_SPLIT = re.compile(r"[;,|\s]+")


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
        wanted = segment_filter(segments)
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


@dataclass(frozen=True, slots=True)
class StatusCell:
    """Where a row the reader accepted keeps its status, so `subscribers apply` can change
    that cell and nothing else; rows the reader skips have none, and so are never touched."""

    line: int  # the row's first physical line
    key: str  # its address as the store keeps it (normalised, lowercased)
    status: str  # what the row says, lowercased
    column: int  # the status cell's position in the row (a repeated header may move it)


@functools.lru_cache(maxsize=4096)
def split_segments(raw: str) -> frozenset[str]:
    """Cached because a list repeats a handful of segment strings across thousands of rows."""
    segments = set(_SEGMENT_SPLIT.split(raw.lower()))
    segments.discard("")
    return frozenset(segments)


def segment_filter(segments: Iterable[str]) -> frozenset[str]:
    """Accept a bare string too, so audience("wg1") does not silently mean segments w, g and 1."""
    if isinstance(segments, str):
        segments = (segments,)
    wanted: set[str] = set()
    for s in segments:
        wanted |= split_segments(s)
    return frozenset(wanted)


def status_of(raw: str, errors: list[str]) -> str | None:
    """A status cell as the list keeps it, or None with why in `errors`: an empty or unknown
    status is never taken as subscribed, in case the person opted out."""
    status = raw.lower()
    known = _STATUS_NAMES.get(status)
    if known is not None:
        return known  # the one shared string, not a copy per row (100k rows: 6 MB)
    choices = ", ".join(STATUSES)
    if not status:
        errors.append(
            f"the status is empty; write one of {choices} (an empty status is not "
            "assumed to be subscribed, in case the person opted out)"
        )
    else:
        errors.append(
            f"unknown status {shown(raw)}{did_you_mean(status, STATUSES)}; write one of {choices}"
        )
    return None


def summary_table(
    sl: SubscriberList, segments: Iterable[str] = (), *, max_problems: int = 50
) -> Table:
    """What `newsflash subscribers` prints: enough to decide whether the list is safe to send to.

    Problems are capped because a list exported with the wrong delimiter can produce one per
    row, and the first few are what point at the cause.
    """
    wanted = segment_filter(segments)
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
