"""The report's fast read of subscribers.csv (split at line ends and delimiters) must read
exactly what the csv module reads, or step aside for it: hostile lists written by hand, then
random ones built from the characters that matter to a CSV parser.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflash.reports import partners
from newsflash.subscribers import load_subscribers

HEADER = "email,first_name,organisation,status"

# Lists the split read takes on itself, each with what the csv module reads from it.
SPLIT = {
    "crlf line ends, as Excel writes them": (
        f"{HEADER}\r\nanna@example.org,Anna,ACME,subscribed\r\n",
        {"anna@example.org": "ACME"},
    ),
    "a row too short to reach the organisation is skipped": (
        f"{HEADER}\nanna@example.org,Anna\nbert@example.org,Bert,Bee Ltd,subscribed\n",
        {"bert@example.org": "Bee Ltd"},
    ),
    "rows wider than the header and fields with the delimiter count of the rest": (
        f"{HEADER}\nanna@example.org,Anna,ACME,subscribed,extra,more\n",
        {"anna@example.org": "ACME"},
    ),
    "spaces after delimiters and around the address, upper case": (
        "Email; Organisation ;status\n  Anna@Example.ORG ;   ACME    Ltd  ;subscribed\n",
        {"anna@example.org": "ACME Ltd"},
    ),
    "the organisation before the address, tab separated": (
        "organisation\temail\nACME\tanna@example.org\n",
        {"anna@example.org": "ACME"},
    ),
    "a repeated address keeps its first non-empty organisation": (
        f"{HEADER}\nanna@example.org,A,,s\nANNA@example.org,A,ACME,s\nanna@example.org,A,B,s\n",
        {"anna@example.org": "ACME"},
    ),
    "blank lines and no line end at the end": (
        f"{HEADER}\n\n\nanna@example.org,Anna,ACME,subscribed",
        {"anna@example.org": "ACME"},
    ),
    "control and direction characters in the organisation": (
        f"{HEADER}\nanna@example.org,Anna,\u202eAC\x07ME\x0b,subscribed\n",
        {"anna@example.org": "ACME"},
    ),
    "a partner who names no organisation is listed with none, not left out": (
        f"{HEADER}\nanna@example.org,Anna,,subscribed\nbert@example.org,Bert,  ,s\n",
        {"anna@example.org": "", "bert@example.org": ""},
    ),
    "no organisation column": ("email,status\nanna@example.org,subscribed\n", {}),
    "a header only": (f"{HEADER}\n", {}),
}

# Lists only the csv module reads right: the split read must decline them.
CSV_ONLY = {
    "a quoted organisation with the delimiter in it": (
        f'{HEADER}\nanna@example.org,Anna,"ACME, Inc.",subscribed\n'
    ),
    "a quoted organisation with a line break in it": (
        f'{HEADER}\nanna@example.org,Anna,"ACME\nInc.",subscribed\n'
    ),
    "a lone carriage return inside a row": f"{HEADER}\nanna@example.org,Anna,AC\rME,s\n",
    "a NUL character": f"{HEADER}\nanna@example.org,Anna,AC\x00ME,subscribed\n",
    "a field longer than the csv module allows": (
        f"{HEADER}\nanna@example.org,Anna,{'A' * (csv.field_size_limit() + 1)},s\n"
    ),
}


def _or_error(read: Callable[[str], dict[str, str]], text: str) -> object:
    """What a read gives, or csv.Error when it refuses the list."""
    try:
        return read(text)
    except csv.Error:
        return csv.Error


@pytest.mark.parametrize(("text", "expected"), SPLIT.values(), ids=SPLIT.keys())
def test_the_split_read_reads_what_the_csv_module_reads(
    text: str, expected: dict[str, str]
) -> None:
    assert partners._by_split(text) == expected
    assert partners._by_csv(text) == expected


@pytest.mark.parametrize("text", CSV_ONLY.values(), ids=CSV_ONLY.keys())
def test_a_list_that_needs_the_csv_module_is_left_to_it(text: str) -> None:
    assert partners._by_split(text) is None
    assert _or_error(partners._plain, text) == _or_error(partners._by_csv, text)


def test_a_list_with_a_field_over_the_csv_limit_still_gets_the_validating_loaders_answer(
    tmp_path: Path,
) -> None:
    """The csv module refuses the whole list; the full loader then decides, as before."""
    path = tmp_path / "subscribers.csv"
    long_name = "B" * (csv.field_size_limit() + 1)
    path.write_text(
        f"email,first_name,organisation,status\nanna@example.org,{long_name},ACME,subscribed\n",
        encoding="utf-8",
    )
    listed = load_subscribers(path).recipients
    expected = {r.email.lower(): r.organisation for r in listed}
    found = partners.organisations(path, ["anna@example.org"])
    assert {a: found.get(a) for a in expected} == expected


# The characters a CSV parser decides on, and a few it must leave alone.
_CELL = st.text(alphabet=list(',;\t| "\r\n\x00\x0baA@.\u202eé'), max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    header=st.sampled_from(
        ["email,organisation", "organisation;email;x", "email\tx\torganisation", "Email | Org"]
    ),
    cells=st.lists(_CELL, max_size=30),
)
def test_any_list_the_split_read_answers_reads_as_the_csv_module_reads_it(
    header: str, cells: list[str]
) -> None:
    text = header + "\n" + "".join(cells)
    split = partners._by_split(text)
    if split is not None:
        assert split == _or_error(partners._by_csv, text)
