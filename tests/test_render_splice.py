"""MJML by its text blocks (render_splice): whatever the mj-text contents and the text around
them become, a splice is byte for byte what mjml-python writes for the whole email, and a
rebuild that changed only contents does splice (the comparison is not vacuous)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsflash.config import load_config
from newsflash.pipeline import build_edition
from newsflash.render import Renderer
from newsflash.render_splice import Splicer, cut_mjml, mjml_html

ROOT = Path(__file__).resolve().parent.parent
EDITION = "2022-02"
SAMPLE = (ROOT / "tests" / "golden" / "2022-02" / "email.mjml").read_text(encoding="utf-8")
# HTML's and Markdown's own characters, whitespace where MRML drops some, entities and tags
# as item bodies hold them, and pieces that break MJML (an unclosed tag, a bare '<').
PIECES = (
    "a",
    "é→",
    " ",
    "  ",
    "\n",
    "\n\n  ",
    "\t",
    "&amp;",
    "&#847;",
    "<p>",
    "</p>",
    "<br>",
    "<br/>",
    "<b>x</b>",
    '<a href="https://example.org/?a=1&amp;b=2" style="color:red">l</a>',
    "<a href='x'>y</a>",
    "<ul><li>i</li></ul>",
    "<!-- c -->",
    "<",
    ">",
    '"',
    "<mj-text>",
    "</mj-text>",
    "{",
)
CUT = cut_mjml(SAMPLE)


def _email(contents: list[str], skeleton: list[str]) -> str:
    parts = [s + c for s, c in zip(skeleton, contents, strict=False)]
    return "".join(parts) + skeleton[-1]


def _whole(source: str) -> str | None:
    try:
        return mjml_html(source)
    except BaseException as e:  # mjml-python's bare exception type, or a panic in its parser
        if isinstance(e, KeyboardInterrupt):
            raise
        return None


def _spliced(splicer: Splicer, source: str) -> str | None:
    try:
        return splicer.render(source)
    except BaseException as e:  # as _whole
        if isinstance(e, KeyboardInterrupt):
            raise
        return None


def test_the_sample_is_cut_at_every_mj_text() -> None:
    assert CUT is not None
    assert len(CUT.contents) == SAMPLE.count("</mj-text>") > 10
    assert _email(list(CUT.contents), list(CUT.skeleton)) == SAMPLE


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # the skeleton too: a template's or the head's text changed
            st.integers(0, 2**16),
            st.lists(st.sampled_from(PIECES), max_size=8).map("".join),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_every_rebuild_is_the_whole_render(steps: list[tuple[bool, int, str]]) -> None:
    assert CUT is not None
    splicer = Splicer()
    contents, skeleton = list(CUT.contents), list(CUT.skeleton)
    assert _spliced(splicer, SAMPLE) == mjml_html(SAMPLE)
    for in_skeleton, seed, text in steps:
        rng = random.Random(seed)
        n = rng.randrange(len(contents))
        if in_skeleton:  # an attribute's value: the block's own padding
            skeleton[n] = skeleton[n].replace("<mj-text", f'<mj-text padding="{seed % 40}px"', 1)
        contents[n] = contents[n][: rng.randrange(len(contents[n]) + 1)] + text
        source = _email(contents, skeleton)
        assert _spliced(splicer, source) == _whole(source)


def test_a_text_edited_is_spliced_and_a_template_edited_is_rendered_whole() -> None:
    assert CUT is not None
    splicer = Splicer()
    splicer.render(SAMPLE)
    contents = list(CUT.contents)
    contents[-3] += "<p>One more line, <b>bold</b>.</p>"
    edited = _email(contents, list(CUT.skeleton))
    assert splicer.render(edited) == mjml_html(edited)
    assert (splicer.whole, splicer.spliced) == (1, 1)
    retitled = edited.replace("<mj-title>", "<mj-title>New: ", 1)
    assert splicer.render(retitled) == mjml_html(retitled)
    assert (splicer.whole, splicer.spliced) == (2, 1)


def test_a_content_that_breaks_mjml_raises_as_the_whole_render_does() -> None:
    assert CUT is not None
    splicer = Splicer()
    splicer.render(SAMPLE)
    contents = list(CUT.contents)
    contents[2] = "<p>never closed"
    with pytest.raises(Exception):  # noqa: B017  # mjml-python's bare exception type
        splicer.render(_email(contents, list(CUT.skeleton)))
    assert splicer.spliced == 0


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(0, 60),
    st.lists(st.sampled_from((*PIECES, "<mj-", "</mj-", "</mj-text", "mj-text>")), max_size=8),
)
def test_a_text_cut_from_each_end_is_the_cut_of_its_tags(
    seed: int, size: int, got: list[str]
) -> None:
    """Cut.recut, which finds one changed content by comparing the texts from each end, cuts
    exactly as cut_mjml does, wherever the change falls (in a content, across its edge, in
    the text around it) and whatever it holds."""
    assert CUT is not None
    rng = random.Random(seed)
    at = rng.randrange(len(SAMPLE))
    edited = SAMPLE[:at] + "".join(got) + SAMPLE[at + rng.randrange(size + 1) :]
    again = CUT.recut(SAMPLE, edited)
    if again is not None:
        assert again == cut_mjml(edited)


def test_the_email_and_its_web_version_each_keep_their_layout(workspace: Path) -> None:
    """The preview alternates between the two (another skeleton: no greeting, no links of
    the partner's own): after the first of each, every rebuild of either is spliced."""
    config = load_config(workspace / "config.toml")
    renderer = Renderer(config)
    edited = sorted((workspace / "submissions").rglob("*.md"))[0]
    text = edited.read_text(encoding="utf-8")
    for n in range(3):
        edited.write_text(f"{text}\nEdit number {n}.\n", encoding="utf-8")
        built = build_edition(config, EDITION, renderer)
        web = renderer.render(built.edition, web=True)
        fresh = Renderer(config)
        assert built.email.html == fresh.render(built.edition).html
        assert web.html == fresh.render(built.edition, web=True).html
    splicer = renderer.templates.splicer
    assert (splicer.whole, splicer.spliced) == (2, 4)
