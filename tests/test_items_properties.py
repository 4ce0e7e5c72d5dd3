"""Property: whatever a contributor saves, parse_item gives an Item or clean Problems.

Arbitrary bytes, arbitrary text, and front-matter-shaped text built from the real field
names with hostile YAML values and Markdown/HTML bodies: never an exception, and every
Problem is a sentence that names the file and says what to do.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from newsflash.config import Config, load_config
from newsflash.content_rules import CONTROL_CHARS
from newsflash.edition import assemble
from newsflash.item_fields import FIELDS
from newsflash.items import Item, Problem, load_items, parse_item
from newsflash.message import message_from, to_mime
from newsflash.pipeline import SAMPLE_PERSON, item_faults
from newsflash.render import Renderer

ROOT = Path(__file__).resolve().parent.parent
EDITION = "2022-02"

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


# Any item `check` accepts, the build accepts: hostile text from all of Unicode (control
# characters and surrogates included) and MJML/Jinja/HTML syntax in every field and the body.

INJECTIONS = [
    "{{ 7 * 7 }}",
    "{% for x in range(3) %}x{% endfor %}",
    "{# c #}",
    "{% raw %}",
    "</mj-text>",
    "</mj-column></mj-section>",
    "<mj-raw><script>alert(1)</script></mj-raw>",
    "<mj-include path='/etc/passwd' />",
    "</mjml>",
    "<![CDATA[x]]>",
    "]]>",
    "<!--",
    "-->",
    "<!--[if mso]><script>x</script><![endif]-->",
    "&amp;",
    "&#0;",
    "&#x0B;",
    "&#xFFFE;",
    "&#xD800;",
    "&#x110000;",
    "&bogus;",
    "&",
    "<",
    '"',
    "'",
    "\x00",
    "\x0b",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udfff",
    "\u2028",
    "\u202e",
    "<style>p{}</style>",
    '<a href="mailto:x">m</a>',
    '<a href="https://example.org/" title="a&#1;b">t</a>',
    '<a href="https://exa&#9;mple.org/">t</a>',
    "[m](mailto:x)",
    "[m](mailto:)",
    "[w](https://x)",
    "<iframe src=javascript:alert(1)>",
    "[d](data:text/html,x)",
    "> " * 30 + "deep",
    "<em>" * 200,
    "- " * 40 + "nested",
]
any_char = st.characters(exclude_categories=())  # surrogates too
hostile_text = st.lists(
    st.one_of(st.sampled_from(INJECTIONS), st.text(any_char, max_size=20)), max_size=6
).map("".join)
LINKS = st.one_of(
    st.sampled_from(
        [
            "https://example.org/more",
            "mailto:wg1@example.org",
            "mailto:wg1",
            "mailto:",
            "https://example.org/a b",
            "https://x",
            "http://example.org/?a=1&b=2",
            "https://example.org/</mj-button>",
            'https://example.org/"><script>',
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
        ]
    ),
    hostile_text.map(lambda t: "https://example.org/" + t),
)


def quoted(value: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes (\\u0001, \\ud800) reach the value as is."""
    return json.dumps(value, ensure_ascii=False)


@st.composite
def hostile_items(draw: st.DrawFn) -> bytes:
    fields = {
        "title": quoted(draw(hostile_text) or "T"),
        "section": "wg1",
        "date": "2022-02-03",
        "edition": '"2022-02"',
    }
    for name in ("author", "organisation", "summary", "link_text", "image_alt", "contact"):
        if draw(st.booleans()):
            fields[name] = quoted(draw(hostile_text))
    if draw(st.booleans()):
        fields["link"] = quoted(draw(LINKS))
    if draw(st.booleans()):
        fields["image"] = quoted(draw(LINKS))
    raw = draw(st.booleans())  # some values unquoted: raw control characters in the YAML
    front = "".join(
        f"{k}: {json.loads(v) if raw and v.startswith(chr(34)) else v}\n" for k, v in fields.items()
    )
    text = f"---\n{front}---\n{draw(hostile_text)}\n\n{draw(hostile_text)}\n"
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def sample_build() -> tuple[Config, Renderer, list[Item]]:
    config = load_config(ROOT / "config.toml")
    items = list(load_items(config.submissions_dir, config.section_keys).items)
    return config, Renderer(config), items


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile_items())
def test_any_item_check_accepts_the_build_accepts_alone_and_among_the_sample_items(
    data: bytes, sample_build: tuple[Config, Renderer, list[Item]]
) -> None:
    config, renderer, sample = sample_build
    item, _ = parse_item(data, KEY, config.section_keys)
    assume(item is not None)
    assert item is not None
    assert item_faults(config, [item], EDITION, renderer) == []
    for items in ([item], [*sample, item]):
        email = renderer.render(assemble(config, EDITION, items))  # no BuildError
        assert email.ok, [str(c) for c in email.checks if c.level == "error"]
        assert not CONTROL_CHARS.search(email.html + email.text)
        to_mime(message_from(config, email), SAMPLE_PERSON).as_bytes()
    assert item.key in {i.key for i in assemble(config, EDITION, [*sample, item]).items}
