"""Each partner's organisation, read from subscribers.csv without validating the list.

A report needs one column of the list, keyed by address; validating all of it (every address,
status, segment and language) took 1.65 s for 100k partners. The ledger already holds the
addresses that were sent to, normalised, so a plain CSV read that lowercases each address
finds them. What the plain read cannot be sure of (a legacy encoding, an address with
non-ASCII characters, which the validator turns into punycode) is left to the full loader.
A list the csv module is not needed for (no quotes: most lists a spreadsheet writes) is split at
line ends and delimiters instead: the same rows, at about three quarters of the CPU time.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable
from itertools import repeat
from pathlib import Path

from newsflash.errors import SubscribersError
from newsflash.subscriber_rows import decode
from newsflash.subscribers import load_subscribers

__all__ = ["organisations"]

_HEADER_SPACES = re.compile(r"[\s\-]+")
# Invisible characters that would reach the terminal or a CSV cell (as subscribers strips).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What only the csv module reads right: a quote, a NUL, a lone CR (not part of a CRLF).
_CSV_ONLY = ('"', "\x00", "\r")


def _columns(header: list[str]) -> tuple[int, int] | None:
    names = [_HEADER_SPACES.sub("_", h.strip().strip("\ufeff").lower()) for h in header]
    if "email" not in names or "organisation" not in names:
        return None
    return names.index("email"), names.index("organisation")


def _delimiter(first_line: str) -> str:
    """The one of , ; tab | that splits the header most (a one-column list has none)."""
    return max(",;\t|", key=first_line.count) if any(d in first_line for d in ",;\t|") else ","


def _by_csv(text: str) -> dict[str, str]:
    """address (lowercased) -> organisation, as `_collect` keeps it."""
    reader = csv.reader(
        io.StringIO(text), delimiter=_delimiter(text.split("\n", 1)[0]), skipinitialspace=True
    )
    where = _columns(next(reader, []))
    return {} if where is None else _collect(reader, where)


def _by_split(text: str) -> dict[str, str] | None:
    """What `_by_csv` reads, by splitting at line ends and delimiters: the csv module's read
    and its rows cost 0.17-0.30 s of a report of 100k partners, these splits 0.11-0.19 s (CPU,
    fresh processes). None when the text needs the csv module: a quote, a NUL, a lone CR, or
    a line longer than the csv module's field limit (it refuses that line). A space the csv
    module skips after a delimiter is one the address's strip and the organisation's clean
    remove anyway; a row too short is skipped by both."""
    text = text.replace("\r\n", "\n") if "\r" in text else text
    if any(c in text for c in _CSV_ONLY):
        return None
    lines = text.split("\n")
    if max(map(len, lines)) > csv.field_size_limit():
        return None
    delimiter = _delimiter(lines[0])
    where = _columns(lines[0].split(delimiter))
    if where is None:
        return {}
    cut = max(where) + 1  # the fields after the last one read stay in one piece
    return _collect(map(str.split, lines[1:], repeat(delimiter), repeat(cut)), where)


def _collect(rows: Iterable[list[str]], where: tuple[int, int]) -> dict[str, str]:
    """address (lowercased) -> organisation, the first non-empty one for a repeated address;
    '' for a listed partner who names none (counted under "no organisation", as the full
    loader's answer and the organisation a send records count them, not as not listed)."""
    i_email, i_org = where
    width = max(where) + 1
    found: dict[str, str] = {}
    cleaned: dict[str, str] = {}  # a list names a few hundred organisations 100k times
    for row in rows:
        if len(row) < width:
            continue
        org = cleaned.get(row[i_org])
        if org is None:
            org = cleaned[row[i_org]] = " ".join(_CONTROL.sub("", row[i_org]).split())
        key = row[i_email].strip().lower()
        if key not in found or (org and not found[key]):
            found[key] = org
    return found


def _plain(text: str) -> dict[str, str]:
    """address (lowercased) -> organisation, as `_collect` keeps it; csv.Error for a list the
    csv module refuses."""
    found = _by_split(text)
    return _by_csv(text) if found is None else found


def organisations(path: Path, addresses: Collection[str]) -> dict[str, str]:
    """The organisation of each of `addresses` (lowercased) that the list names.

    Raises SubscribersError when the list cannot be read at all."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SubscribersError(f"{path}: cannot read it ({e.strerror or e})") from None
    decoded = decode(data)
    found: dict[str, str] = {}
    if decoded.encoding == "utf-8":
        try:
            found = _plain(decoded.text)
        except csv.Error:
            found = {}
    # Which addresses the plain read missed is asked only of a list it may have misread: on a
    # plain UTF-8 ASCII list a missing address is simply not listed (100k lookups saved).
    doubtful = decoded.encoding != "utf-8" or not found or not decoded.text.isascii()
    if doubtful and any(a.lower() not in found for a in addresses):
        listed = load_subscribers(path)  # the full loader decides what the plain read could not
        found = {r.email.lower(): r.organisation for r in listed.recipients}
    return found
