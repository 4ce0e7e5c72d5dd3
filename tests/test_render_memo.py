"""A template's output kept by what it reads (render_memo) is only ever what a render without
it writes: a partial that reads a counter or draws lots is rendered afresh, and one that
includes another file is kept only by that file as loaded now."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import own_template

from newsflash.config import load_config
from newsflash.pipeline import build_edition
from newsflash.render import HTML_TEMPLATE, PACKAGE_TEMPLATES, TEXT_TEMPLATE, Renderer
from newsflash.render_engine import Templates
from newsflash.render_memo import Plan, memo_plan

EDITION = "2022-02"
COUNTING_SECTION = """<mj-section padding="28px 0 0">
  <mj-column>
    {% set ns = namespace(n=0) %}
    {% for item in section.items %}
    {% set ns.n = ns.n + 1 %}
    {% include "partials/item.mjml.j2" %}
    {% endfor %}
  </mj-column>
</mj-section>"""


def _items(workspace: Path, orders: dict[str, int]) -> None:
    """Only these items, all in one section, in the order given."""
    folder = workspace / "submissions"
    shutil.rmtree(folder)
    (folder / EDITION).mkdir(parents=True)
    for name, order in orders.items():
        (folder / EDITION / f"{name}.md").write_text(
            f"---\ntitle: Item {name}\nsection: wg1\ndate: 2022-02-01\norder: {order}\n"
            f'edition: "{EDITION}"\nstatus: ready\n---\nThe text of {name}.\n',
            encoding="utf-8",
        )


def _assert_full_render(workspace: Path, renderer: Renderer) -> str:
    """The kept renderer's MJML and text are those of templates that keep nothing."""
    config = load_config(workspace / "config.toml")
    built = build_edition(config, EDITION, renderer)
    full = Templates(config.templates_dir, PACKAGE_TEMPLATES, memo=False)
    context = renderer.context(built.edition)
    assert built.email.mjml == full.html.get_template(HTML_TEMPLATE).render(context)
    assert built.email.text == full.text.get_template(TEXT_TEMPLATE).render(context)
    return built.email.mjml


def test_an_item_partial_that_reads_a_counter_shows_each_items_place_after_a_reorder(
    workspace: Path,
) -> None:
    """The same item (its file unchanged), moved by the others' order, reads another count:
    a namespace gives no key, so no memo."""
    (workspace / "templates" / "partials").mkdir(parents=True)
    (workspace / "templates" / "partials" / "section.mjml.j2").write_text(COUNTING_SECTION)
    own_template(workspace, "partials/item.mjml.j2", "<mj-text>place {{ ns.n }}</mj-text>")
    _items(workspace, {"a": 2, "b": 1, "c": 3})
    renderer = Renderer(load_config(workspace / "config.toml"))
    first = _assert_full_render(workspace, renderer)
    _items(workspace, {"a": 2, "b": 3, "c": 4})
    again = _assert_full_render(workspace, renderer)

    def heading(name: str) -> str:
        return f"</a>Item {name}</h3>"

    assert first.index(heading("a")) < first.index("place 2") < first.index(heading("c"))
    assert again.index(heading("a")) < again.index("place 1") < again.index(heading("b"))


def test_an_item_partial_that_includes_another_file_shows_that_file_once_edited(
    workspace: Path,
) -> None:
    """The including file is unchanged (so not reloaded), but what it includes changed."""
    own_template(workspace, "partials/item.mjml.j2", '{% include "partials/extra.mjml.j2" %}')
    extra = workspace / "templates" / "partials" / "extra.mjml.j2"
    extra.write_text("<mj-text>version one</mj-text>", encoding="utf-8")
    renderer = Renderer(load_config(workspace / "config.toml"))
    assert "version one" in _assert_full_render(workspace, renderer)
    extra.write_text("<mj-text>version two</mj-text>", encoding="utf-8")
    assert "version two" in _assert_full_render(workspace, renderer)


@pytest.mark.parametrize(
    "source",
    [
        "{{ [1, 2, 3] | random }}",
        "{% include name %}",
        '{% include ["partials/item.mjml.j2"] %}',
        '{% include "partials/item.mjml.j2" ignore missing %}',
        '{% extends "edition.mjml.j2" %}',
        '{% import "partials/item.mjml.j2" as x %}{{ item }}',
        '{% from "partials/item.mjml.j2" import y %}',
        "{% block b %}{{ item }}{% endblock %}",
    ],
    ids=[
        "random",
        "include-a-name",
        "include-a-list",
        "include-missing",
        "extends",
        "import",
        "from-import",
        "block",
    ],
)
def test_a_template_that_draws_lots_or_reads_other_files_is_never_kept(source: str) -> None:
    templates = Templates(Path("/nonexistent"), PACKAGE_TEMPLATES)
    assert memo_plan(templates.html, source, "t.mjml.j2") is None


def test_a_plain_partial_is_kept_by_the_names_it_reads() -> None:
    templates = Templates(Path("/nonexistent"), PACKAGE_TEMPLATES)
    source = (
        "{% set x = item.title %}{{ x }} {{ accent }}{% for y in item.tags %}{{ y }}{% endfor %}"
    )
    assert memo_plan(templates.html, source, "t.mjml.j2") == Plan(("accent", "item"), ())


def test_a_partial_that_includes_files_by_name_is_kept_by_them_and_what_they_read() -> None:
    templates = Templates(Path("/nonexistent"), PACKAGE_TEMPLATES)
    source = '{% for item in section.items %}{% include "partials/item.mjml.j2" %}{% endfor %}'
    plan = memo_plan(templates.html, source, "t.mjml.j2")
    assert plan == Plan(("section",), ("partials/item.mjml.j2",))


def test_a_template_edited_between_two_rebuilds_is_used_by_the_second(workspace: Path) -> None:
    """Each template is checked once a render: an override added, then edited, shows at once."""
    renderer = Renderer(load_config(workspace / "config.toml"))
    _assert_full_render(workspace, renderer)
    path = own_template(workspace, "partials/footer.mjml.j2", "<mj-text>first note</mj-text>")
    assert "first note" in _assert_full_render(workspace, renderer)
    path.write_text(path.read_text().replace("first note", "second note"), encoding="utf-8")
    assert "second note" in _assert_full_render(workspace, renderer)


def test_an_include_in_a_branch_not_taken_naming_no_file_renders_as_without_the_memo(
    tmp_path: Path,
) -> None:
    (tmp_path / "t").mkdir()
    source = "{% if false %}{% include 'nothere.j2' %}{% endif %}ok {{ name }}"
    (tmp_path / "t" / "x.j2").write_text(source)
    for memo in (False, True, True):
        html = Templates(tmp_path / "t", PACKAGE_TEMPLATES, memo=memo).html
        assert html.get_template("x.j2").render(name="A") == "ok A"


def test_a_save_landing_while_jinja_loads_a_template_cannot_key_it_by_the_saved_names(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo's plan is made from the text Jinja compiled. Here a save lands just after
    Jinja read the item partial, in the same tick of the file's clock (its mtime kept, as on
    a file system with coarse times), so Jinja keeps the text it read: were the plan read
    from the file again, the partial would be kept by the saved text's names (`accent`
    alone) and every item would show the first one's title."""
    partial = own_template(workspace, "partials/item.mjml.j2")
    partial.write_text("<mj-text>{{ item.title }}</mj-text>", encoding="utf-8")
    _items(workspace, {"a": 1, "b": 2, "c": 3})
    config = load_config(workspace / "config.toml")
    renderer = Renderer(config)
    own = renderer.templates.loader.own
    real = own.get_source
    saved: list[str] = []

    def read_then_saved(environment: object, name: str) -> object:
        found = real(environment, name)  # type: ignore[arg-type]
        if name == "partials/item.mjml.j2" and not saved:
            stamp = partial.stat().st_mtime_ns
            partial.write_text("<mj-text>{{ accent }}</mj-text>", encoding="utf-8")
            os.utime(partial, ns=(stamp, stamp))
            saved.append(name)
        return found

    monkeypatch.setattr(own, "get_source", read_then_saved)
    mjml = build_edition(config, EDITION, renderer).email.mjml
    assert saved
    assert all(f"<mj-text>Item {name}</mj-text>" in mjml for name in "abc"), mjml
