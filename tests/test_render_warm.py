"""The warm rebuild's shortcuts say exactly what the slower code they replace says."""

from __future__ import annotations

import sys

import pytest

from newsflash.render_engine import may_float


def test_no_character_but_the_ascii_letters_lowers_to_a_letter_of_float() -> None:
    """What may_float rests on: `"float" in raw.lower()` can only come from ASCII letters."""
    letters = set("float")
    others = [
        hex(n)
        for n in range(sys.maxunicode + 1)
        if not 0xD800 <= n <= 0xDFFF
        and chr(n) not in "floatFLOAT"
        and letters & set(chr(n).lower())
    ]
    assert others == []


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "float",
        "FLOAT: left",
        "FlOaT",
        "flo at",
        "floa\u0130t",  # a capital I with a dot lowers to two characters
        "\u212a float",  # the Kelvin sign lowers to an ASCII k
        "fl\u00f6at",
        'style="fLoAt:right" \U0001f600',
        "\ud800 lone surrogate before float",
        "ﬂoat",  # the fl ligature is one character that lowers to itself
    ],
)
def test_may_float_says_what_lower_says(raw: str) -> None:
    assert may_float(raw) == ("float" in raw.lower())
