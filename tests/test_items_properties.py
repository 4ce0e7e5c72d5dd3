"""Property: whatever a contributor saves, parse_item gives an Item or clean Problems.

Arbitrary bytes, arbitrary text, and front-matter-shaped text built from the real field
names with hostile YAML values and Markdown/HTML bodies: never an exception, and every
Problem is a sentence that names the file and says what to do.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsflash.items import FIELDS, Item, Problem, parse_item

SECTIONS = ("alliance", "wg1", "wg2", "battery", "projects", "events")
KEY = "submissions/any.md"
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words by which a message tells the contributor what to do (or offers the valid choices).
ACTION = re.compile(
    r"\b(write|add|save|start|use|put|remove|must|needs?|did you mean|known fields|"
    r"valid sections|change)\b",
    re.IGNORECASE,
)

YAML_TRICKS = [
    "",
    "~",
    "null",
    "yes",
    "no",
    "on",
    "true",
    "0x1F",
    "1e400",
    ".nan",
    "-.inf",
    "0o17",
    "2022-02-30",
    "2022-13-01",
    "2022-01-17T25:00:00",
    "2022-01-17 10:00:00+02:00",
    "17 January 2022",
    "2022-03",
    '"2022-03"',
    "[a, b]",
    "{a: 1}",
    "[",
    "{",
    "]",
    "}",
    "&a x",
    "*a",
    "*undefined",
    "!!binary zzz",
    "!!python/object:os.system",
    "!!str",
    "!!int x",
    "!!timestamp x",
    "!!bool x",
    "!!float x",
    "!!set {a}",
    "!!binary aGk=",
    "|",
    ">",
    "'unclosed",
    '"unclosed',
    "a: b: c",
    "- x",
    "? x",
    "@x",
    "`x`",
    "%TAG",
    "#comment",
    "x #comment",
    "https://example.org/x",
    "javascript:alert(1)",
    "data:text/html,x",
    "mailto:x@example.org",
    "x@example.org",
    "\t",
    "\ufeff",
    "é",
    "\u202e",
    "-1",
    "1.5",
    "9" * 40,
]
MARKDOWN_TRICKS = [
    "# Heading",
    "**bold**",
    "[x](https://example.org)",
    "[x](javascript:alert(1))",
    "[x](/relative)",
    "![img](https://example.org/i.png)",
    "<script>alert(1)</script>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "<img src=x onerror=alert(1)>",
    "<https://example.org>",
    "<x@example.org>",
    "```\ncode\n```",
    "> quote",
    "- item",
    "1. item",
    "<!-- comment -->",
    "<style>p{}</style>",
    "[ref]\n\n[ref]: https://x.org",
    "---",
    "...",
    "\x00",
    "\r",
    "\u2028",
    "*" * 50,
    "[" * 50,
    "<" * 50,
    "\\",
    "&#0;",
]

field_names = st.one_of(
    st.sampled_from(sorted(FIELDS)),
    st.sampled_from(["titel", "Title", "sektion", "dates", "tags"]),
    st.text(min_size=1, max_size=8),
)
scalars = st.one_of(
    st.sampled_from(YAML_TRICKS),
    st.sampled_from(SECTIONS),
    st.text(max_size=30),
    st.integers().map(str),
    st.dates().map(dt.date.isoformat),
)
bodies = st.lists(
    st.one_of(st.sampled_from(MARKDOWN_TRICKS), st.text(max_size=40)), max_size=6
).map("\n\n".join)


@st.composite
def front_matter_files(draw: st.DrawFn) -> str:
    """Text shaped like an item file: '---', field lines (hostile values), '---', a body."""
    lines = [f"{draw(field_names)}: {draw(scalars)}" for _ in range(draw(st.integers(0, 10)))]
    if draw(st.booleans()):
        lines.append(f"{draw(field_names)}:")
        lines.extend(f"  - {draw(scalars)}" for _ in range(draw(st.integers(0, 3))))
    opener = draw(st.sampled_from(["---", "---", "--- ", "\ufeff---", "", "----"]))
    closer = draw(st.sampled_from(["---", "---", "...", "", "--- x"]))
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    return newline.join([opener, *lines, closer, draw(bodies)])


yaml_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.dates()
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=8,
)


@st.composite
def dumped_yaml_files(draw: st.DrawFn) -> str:
    """Well-formed YAML of any shape and type, the real fields mixed with others."""
    meta = draw(st.dictionaries(field_names, yaml_values, max_size=8))
    if draw(st.booleans()):
        meta.update(title="T", section=draw(st.sampled_from(SECTIONS)), date=dt.date(2022, 1, 1))
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True) + "---\n" + draw(bodies)


def assert_clean(result: object) -> None:
    assert isinstance(result, tuple) and len(result) == 2
    item, problems = result
    assert isinstance(problems, list)
    for p in problems:
        assert isinstance(p, Problem)
        assert p.path == KEY
        assert p.severity in ("error", "warning")
        assert isinstance(p.message, str) and p.message.strip(), p
        assert ACTION.search(p.message), f"says what is wrong but not what to do: {p}"
        assert p.line is None or p.line >= 1
        assert p.field is None or isinstance(p.field, str)
        assert str(p).startswith(KEY)
    errors = [p for p in problems if p.severity == "error"]
    if item is None:
        assert errors, "a file without an item must say why"
    else:
        assert isinstance(item, Item)
        assert not errors
        assert item.section in SECTIONS
        assert item.title and isinstance(item.date, dt.date)


@PROPERTY
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_only_clean_problems_or_an_item(data: bytes) -> None:
    assert_clean(parse_item(data, KEY, SECTIONS))


@PROPERTY
@given(st.text(max_size=400))
def test_arbitrary_text_gives_only_clean_problems_or_an_item(text: str) -> None:
    assert_clean(parse_item(text.encode("utf-8", "surrogatepass"), KEY, SECTIONS))


@PROPERTY
@given(front_matter_files())
def test_front_matter_shaped_text_gives_only_clean_problems_or_an_item(text: str) -> None:
    assert_clean(parse_item(text.encode("utf-8", "surrogatepass"), KEY, SECTIONS))


@PROPERTY
@given(dumped_yaml_files())
def test_yaml_of_any_shape_gives_only_clean_problems_or_an_item(text: str) -> None:
    assert_clean(parse_item(text.encode("utf-8", "surrogatepass"), KEY, SECTIONS))


@pytest.mark.parametrize(
    "value",
    [
        "!!bool x",
        "!!int x",
        "!!float x",
        "!!timestamp x",
        "2022-02-30",
        "!!binary zz",
        "!!set [a]",
        "!!omap x",
        "!!python/name:os.system",
        "!!binary aGk=",
        "!!set {a}",
    ],
)
@pytest.mark.parametrize("field", ["date", "author", "order"])
def test_yaml_tags_pyyaml_cannot_construct_are_clean_problems(field: str, value: str) -> None:
    """Regression: PyYAML raised AttributeError/KeyError/ValueError for these."""
    lines = {"title": "T", "section": "wg1", "date": "2022-01-01", field: value}
    text = "---\n" + "".join(f"{k}: {v}\n" for k, v in lines.items()) + "---\nx\n"
    assert_clean(parse_item(text.encode(), KEY, SECTIONS))


def test_deeply_nested_yaml_is_a_clean_problem() -> None:
    text = "---\ntitle: " + "[" * 2000 + "]" * 2000 + "\n---\nx\n"
    assert_clean(parse_item(text.encode(), KEY, SECTIONS))


def test_yaml_alias_bomb_in_every_field_is_a_clean_problem_and_quick() -> None:
    levels = ["&a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    bomb = "[" + ", ".join(levels) + "]"
    for field in FIELDS:
        text = f"---\ntitle: T\nsection: wg1\ndate: 2022-01-01\n{field}: {bomb}\n---\nx\n"
        assert_clean(parse_item(text.encode(), KEY, SECTIONS))
