"""files.slug: the one way free text (a title, a subject, a file name) becomes a name part."""

from __future__ import annotations

import pytest

from newsflash.files import slug


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WG1 meeting in Brussels", "wg1-meeting-in-brussels"),
        ("  --Call for items!--  ", "call-for-items"),
        ("Réunion à Liège", "r-union-li-ge"),
        ("../../etc/passwd", "etc-passwd"),
        ('<script>alert("x")</script>', "script-alert-x-script"),
    ],
)
def test_a_slug_keeps_only_lowercase_ascii_letters_and_digits(text: str, expected: str) -> None:
    assert slug(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "---", "日本語", "\x00\x01"])
def test_a_slug_of_nothing_usable_is_the_fallback_word(text: str) -> None:
    assert slug(text) == "item"
    assert slug(text, empty="notice") == "notice"


def test_a_slug_is_cut_at_its_limit_and_unlimited_without_one() -> None:
    title = "a" * 70
    assert slug(title, limit=60) == "a" * 60
    assert slug(title) == title
