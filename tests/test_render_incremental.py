"""The incremental inliner (render_inline) writes exactly what premailer writes over the whole
email: after random edits of items, sections, templates and the config, and whenever a
stylesheet looks at siblings or position, where it must inline the whole email again."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from conftest import own_template

from newsflash.config import Config, load_config
from newsflash.pipeline import BuiltEdition, build_edition
from newsflash.render import HTML_TEMPLATE, PACKAGE_TEMPLATES, TEXT_TEMPLATE, Renderer
from newsflash.render_engine import Templates, to_html
from newsflash.render_inline import IncrementalInliner, inline_whole
from newsflash.web.previewer import Previewer

EDITION = "2022-02"
SEEDS = range(24)
STEPS = 8
WORDS = [
    "skills",
    "battery",
    "partners",
    "transition",
    "training",
    "alliance",
    "charging",
    "regions",
]
STYLES = (  # appended to the workspace's style partial; the last three are not local
    "<mj-style>.nf-meta { color: #123456; } h3 { letter-spacing: 1px; }</mj-style>",
    "<mj-style>td div { line-height: 1.6; } ul li { color: #334455; }</mj-style>",
    "<mj-style>h3 + p { color: #aa0000; }</mj-style>",
    "<mj-style>li ~ li { margin-top: 2px; }</mj-style>",
    "<mj-style>li:first-child { font-weight: bold; }</mj-style>",
)
ITEM_EXTRAS = (  # appended to the workspace's item partial
    "<mj-text>{{ item.title | length }} letters, {{ accent }}</mj-text>",
    "<mj-raw><style>td div { color: #aa0000; }</style></mj-raw>",  # a stylesheet in a row
    '{% if item.order > 5 %}<mj-divider css-class="nf-late" />{% endif %}',
    "",
)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _body(rng: random.Random) -> str:
    parts = [f"{_text(rng, 12)} **{rng.choice(WORDS)}**." for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        parts.append("\n".join(f"- {_text(rng, 4)}" for _ in range(rng.randint(1, 4))))
    if rng.random() < 0.3:
        parts.append(rng.choice([f"> {_text(rng, 6)}", f"#### {_text(rng, 3)}", "`code`"]))
    if rng.random() < 0.4:
        parts.append(
            f"See [the {rng.choice(WORDS)} page](https://example.org/{rng.randint(1, 99)})."
        )
    return "\n\n".join(parts) + "\n"


def _item(rng: random.Random, n: int, sections: list[str]) -> str:
    image = (
        f"image: https://example.org/img/{n}.jpg\nimage_alt: Picture {n}\n"
        if rng.random() < 0.25
        else ""
    )
    return (
        f"---\ntitle: Item {n} on {_text(rng, 3)}\nsection: {rng.choice(sections)}\n"
        f"date: 2022-02-{rng.randint(1, 28):02d}\norganisation: Group {n}\n{image}"
        f'order: {rng.randint(1, 9)}\nedition: "{EDITION}"\nstatus: ready\n---\n' + _body(rng)
    )


class Edits:
    """Random changes to a workspace, of the kinds a secretariat and contributors make."""

    def __init__(self, workspace: Path, seed: int) -> None:
        self.ws = workspace
        self.rng = random.Random(seed)
        self.folder = workspace / "submissions" / EDITION
        self.made = 0

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.md"))

    def sections(self) -> list[str]:
        return re.findall(r'^key = "(\w+)"', (self.ws / "config.toml").read_text(), re.M)

    def apply(self) -> str:
        kinds = ["body", "body", "body", "title", "add", "remove", "order", "section"]
        kinds += ["template", "item_template", "config"]
        kind = self.rng.choice(kinds)
        getattr(self, kind)()
        return kind

    def body(self) -> None:
        path = self.rng.choice(self.files())
        text = path.read_text(encoding="utf-8")
        path.write_text(text + "\n" + _body(self.rng), encoding="utf-8")

    def title(self) -> None:
        path = self.rng.choice(self.files())
        text = path.read_text(encoding="utf-8")
        new = f"title: {_text(self.rng, 5).capitalize()}"
        path.write_text(re.sub(r"^title: .*$", new, text, count=1, flags=re.M), "utf-8")

    def add(self) -> None:
        self.made += 1
        (self.folder / f"new-{self.made}.md").write_text(
            _item(self.rng, self.made, self.sections()), encoding="utf-8"
        )

    def remove(self) -> None:
        if len(self.files()) > 1:
            self.rng.choice(self.files()).unlink()

    def order(self) -> None:
        path = self.rng.choice(self.files())
        text = re.sub(r"^order: .*\n", "", path.read_text(encoding="utf-8"), flags=re.M)
        path.write_text(text.replace("---\n", f"---\norder: {self.rng.randint(1, 9)}\n", 1))

    def section(self) -> None:
        config = self.ws / "config.toml"
        text = config.read_text(encoding="utf-8")
        intro = f'intro = "{_text(self.rng, 4)}"'
        config.write_text(re.sub(r'^intro = ".*"$', intro, text, count=1, flags=re.M), "utf-8")

    def template(self) -> None:
        own_template(self.ws, "partials/style.mjml.j2", self.rng.choice(STYLES))

    def item_template(self) -> None:
        own_template(self.ws, "partials/item.mjml.j2", self.rng.choice(ITEM_EXTRAS))

    def config(self) -> None:
        config = self.ws / "config.toml"
        colour = f'accent_color = "#{self.rng.randint(0, 0xFFFFFF):06x}"'
        text = re.sub(r'^accent_color = ".*"$', colour, config.read_text(), flags=re.M)
        config.write_text(text, encoding="utf-8")


def _renderer(renderers: dict[str, Renderer], config: Config) -> Renderer:
    """One renderer per config, as the preview keeps one while the config stays the same."""
    return renderers.setdefault(config.sha256, Renderer(config))


def _full_render(templates: Templates, renderer: Renderer, built: BuiltEdition) -> tuple[str, ...]:
    """The same edition through templates that keep no output, MJML and a whole inline."""
    context = renderer.context(built.edition)
    source = templates.html.get_template(HTML_TEMPLATE).render(context)
    text = templates.text.get_template(TEXT_TEMPLATE).render(context)
    return source, to_html(source), text


@pytest.mark.parametrize("seed", SEEDS)
def test_an_incremental_rebuild_equals_a_full_render_after_random_edits(
    workspace: Path, seed: int
) -> None:
    """Items changed, added, removed and reordered, a section, the style and item templates
    and the config changed: the kept renderer's MJML, HTML and text are a full render's."""
    edits = Edits(workspace, seed)
    renderers: dict[str, Renderer] = {}
    shared = IncrementalInliner()  # every email of the run, whichever config made it
    full = Templates(workspace / "templates", PACKAGE_TEMPLATES, memo=False)  # reloads edits
    done = []
    for step in range(STEPS + 1):
        kind = edits.apply() if step else "first"
        done.append(kind)
        config = load_config(workspace / "config.toml")
        renderer = _renderer(renderers, config)
        built = build_edition(config, EDITION, renderer)
        source, whole, text = _full_render(full, renderer, built)
        email = built.email
        assert (email.mjml, email.text) == (source, text), f"seed {seed}, after {done}"
        assert email.html == whole, f"seed {seed}, after {done}: the renderer's email"
        assert to_html(email.mjml, shared) == whole, f"seed {seed}, after {done}"


def test_the_random_edits_take_the_incremental_path_for_most_rebuilds(workspace: Path) -> None:
    """Not a vacuous comparison: an item's text changed again and again is inlined block by
    block, one whole inline for the first email only."""
    edits = Edits(workspace, 99)
    config = load_config(workspace / "config.toml")
    renderer = Renderer(config)
    for _ in range(6):
        edits.body()
        built = build_edition(config, EDITION, renderer)
        assert built.email.html == to_html(built.email.mjml)
    inliner = renderer.templates.inliner
    assert inliner.whole == 1
    assert 5 <= inliner.blocks_inlined <= 10  # the five rebuilds after the first


ROWS = """<!DOCTYPE html><html><head><style type="text/css">{css}</style></head><body>
<table><tbody>{rows}</tbody></table></body></html>"""


def _rows(*rows: tuple[str, str]) -> str:
    return "".join(f'<tr class="{cls}"><td><div>{text}</div></td></tr>' for cls, text in rows)


@pytest.mark.parametrize(
    "css",
    [
        ".lead + tr div { color: #aa0000; }",
        ".lead ~ tr div { color: #aa0000; }",
        "tr:first-child { color: #aa0000; }",
        "tr:last-child { color: #aa0000; }",
        "div:first-child { color: #aa0000; }",
    ],
    ids=["adjacent", "general-sibling", "first-child", "last-child", "first-child-inside"],
)
def test_a_stylesheet_that_reads_siblings_or_position_is_inlined_whole_every_time(
    css: str,
) -> None:
    """A row's style here depends on the rows beside it: reusing an unchanged row, or
    inlining a changed one without its siblings, would be wrong."""
    inliner = IncrementalInliner()
    emails = [
        ROWS.format(css=css, rows=_rows(("lead", "a"), ("", "b"), ("", "c"))),
        ROWS.format(css=css, rows=_rows(("", "a"), ("", "b"), ("", "c"))),
        ROWS.format(css=css, rows=_rows(("", "a"), ("lead", "b"), ("", "c changed"))),
        ROWS.format(css=css, rows=_rows(("", "c"), ("lead", "b"), ("", "a"))),
    ]
    for html in emails:
        assert inliner.inline(html, floats=False) == inline_whole(html, floats=False)
    assert inliner.whole == len(emails) and inliner.blocks_inlined == 0


@pytest.mark.parametrize(
    "where",
    ["before the table", "inside an unchanged row"],
)
def test_a_stylesheet_in_the_body_is_read_for_every_row_however_the_email_changes(
    where: str,
) -> None:
    """A template's own <style> outside <head> (an mj-raw in mj-body) is read by premailer
    like any other; cutting the branches that hold no changed row would drop its rules."""
    css = "td div { color: #aa0000; }"
    style = "<style>.x { font-weight: bold; }</style>"
    first_row = ("", f"{style}a") if where == "inside an unchanged row" else ("", "a")
    escaped = style.replace("{", "{{").replace("}", "}}")  # ROWS is a format string
    head = ROWS.replace("<table>", escaped + "<table>") if where == "before the table" else ROWS
    emails = [
        head.format(css=css, rows=_rows(first_row, ("x", "b"), ("x", "c"))),
        head.format(css=css, rows=_rows(first_row, ("x", "b"), ("x", "c changed"))),
    ]
    inliner = IncrementalInliner()
    for html in emails:
        got = inliner.inline(html, floats=False)
        assert got == inline_whole(html, floats=False)
    assert "font-weight:bold" in got.replace(" ", "")


def test_a_local_stylesheet_reinlines_only_the_changed_row() -> None:
    css = ".lead div { color: #aa0000; } td div { font-size: 15px; } p { margin: 0; }"
    inliner = IncrementalInliner()
    first = ROWS.format(css=css, rows=_rows(("lead", "a"), ("", "b"), ("", "c")))
    again = ROWS.format(css=css, rows=_rows(("lead", "a"), ("", "<p>b</p>"), ("", "c")))
    moved = ROWS.format(css=css, rows=_rows(("", "a"), ("lead", "<p>b</p>"), ("", "c")))
    for html in (first, again, moved):
        assert inliner.inline(html, floats=False) == inline_whole(html, floats=False)
    assert inliner.whole == 1 and inliner.blocks_inlined == 3  # b, then a and b


def test_an_email_without_table_rows_is_inlined_whole_and_right() -> None:
    inliner = IncrementalInliner()
    for text in ("one", "two", "two"):
        head = "<html><head><style>p { color: red; }</style></head>"
        html = f"{head}<body><p>{text}</p></body></html>"
        assert inliner.inline(html, floats=False) == inline_whole(html, floats=False)
    assert inliner.blocks_inlined == 0


def test_a_change_of_the_float_option_inlines_the_whole_email_again() -> None:
    css = "img { float: left; }"
    html = ROWS.format(css=css, rows='<tr><td><img src="https://x.org/a.png" alt="a"></td></tr>')
    inliner = IncrementalInliner()
    assert inliner.inline(html, floats=False) == inline_whole(html, floats=False)
    floated = inliner.inline(html, floats=True)
    assert floated == inline_whole(html, floats=True) and 'align="left"' in floated
    assert inliner.whole == 2


def test_an_item_that_writes_html_comments_and_the_mark_word_cannot_confuse_the_cut() -> None:
    css = "td div { color: #123456; }"
    inliner = IncrementalInliner()
    for text in ("<!--nf-block--> a", "<!-- x --> nf-block- b", "c <!--nf-block-0-->"):
        html = ROWS.format(css=css, rows=_rows(("", text), ("", "fixed")))
        assert inliner.inline(html, floats=False) == inline_whole(html, floats=False)


def test_a_preview_rebuild_after_an_item_changed_shows_what_a_whole_render_makes(
    workspace: Path,
) -> None:
    """The preview keeps its renderer, and so the last email's layout, between rebuilds."""
    previewer = Previewer(workspace / "config.toml", EDITION)
    previewer.rebuild()
    path = workspace / "submissions" / EDITION / "newsflash-launch.md"
    for n in range(3):
        path.write_text(path.read_text(encoding="utf-8") + f"\nSentence {n}.\n", "utf-8")
        assert previewer.rebuild()
        build = previewer.snapshot().build
        assert build is not None and f"Sentence {n}." in build.email.html
        assert build.email.html == to_html(build.email.mjml)


def test_the_email_and_its_web_version_each_keep_their_layout_on_one_renderer(
    workspace: Path,
) -> None:
    """The archive renders the web version with the renderer that renders the email: two
    skeletons, each inlined whole once, then each rebuilt row by row."""
    edits = Edits(workspace, 7)
    config = load_config(workspace / "config.toml")
    renderer = Renderer(config)
    for _ in range(3):
        edits.body()
        for web in (False, True):
            edition = build_edition(config, EDITION, renderer).edition
            email = renderer.render(edition, web=web)
            assert email.html == to_html(email.mjml)
    assert renderer.templates.inliner.whole == 2


@pytest.mark.parametrize(
    "tag", ["<style>td div { color: #aa0000; }</style>", '<link rel="stylesheet" href="x.css">']
)
def test_a_rebuild_that_adds_a_stylesheet_inside_a_changed_row_inlines_the_whole_email(
    tag: str,
) -> None:
    """A row that gains its own <style> changes every row's style in premailer's eyes: the
    rows kept from the last email would miss its rules, so the email is inlined whole."""
    css = "p { margin: 0; }"
    inliner = IncrementalInliner()
    first = ROWS.format(css=css, rows=_rows(("", "a"), ("", "b"), ("", "c")))
    added = ROWS.format(css=css, rows=_rows(("", "a"), ("", f"{tag}<p>b</p>"), ("", "c")))
    for html in (first, added):
        assert inliner.inline(html, floats=False) == inline_whole(html, floats=False)
    assert inliner.whole == 2 and inliner.blocks_inlined == 0


HOSTILE_ROW_TEXTS = [
    "<!-- a comment left open",
    '<a title="<tr>" href="https://example.org/">a row in an attribute</a>',
    '<a title="</tr>" href="https://example.org/">an end of row in an attribute</a>',
    "</div></td></tr><tr><td><div>a row closed and another opened",
    "<table><tr><td>a nested row</td></tr></table>",
    "</tbody></table>the table closed",
    "<div>a div left open",
    "<p>a paragraph left open",
    "x <!--[if mso]><tr><td><![endif]--> a row in a conditional comment",
    "a < b & c > d",
    "</td>a stray end of cell",
    "<TR><TD>an upper-case row</TD></TR>",
    "<body>a second body",
    "<![CDATA[ x ]]> character data",
    "</body></html>the end of the page",
]


@pytest.mark.parametrize("text", HOSTILE_ROW_TEXTS)
def test_a_row_whose_new_text_breaks_out_of_its_row_gives_what_a_whole_inline_gives(
    text: str,
) -> None:
    """The rebuild finds the rows in the email's text before any parse: a text that opens,
    closes or hides a row (or a comment, a table, the body) must not fool the cut."""
    css = ".lead div { color: #aa0000; } td div { font-size: 15px; } p { margin: 0; }"
    inliner = IncrementalInliner()
    emails = [
        ROWS.format(css=css, rows=_rows(("lead", "a"), ("", "b"), ("", "c"))),
        ROWS.format(css=css, rows=_rows(("lead", "a"), ("", text), ("", "c"))),
        ROWS.format(css=css, rows=_rows(("lead", "a"), ("", text), ("", "c changed"))),
        ROWS.format(css=css, rows=_rows(("lead", "a"), ("", "b"), ("", "c changed"))),
    ]
    for n, html in enumerate(emails):
        assert inliner.inline(html, floats=False) == inline_whole(html, floats=False), n
