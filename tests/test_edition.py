"""The edition: which items go in (and why the others stay out), their order, numbering, and
the manifest hash that approval and sending sign."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from conftest import own_template

from newsflash import edition as edition_mod
from newsflash.config import Config, load_config, parse_config
from newsflash.edition import (
    Edition,
    assemble,
    build_manifest,
    clickable,
    select_items,
)
from newsflash.errors import BuildError
from newsflash.items import Item, load_items
from newsflash.months import edition_number, month_label, parse_edition_id
from newsflash.pipeline import build_edition, load, write_build
from newsflash.render import template_hash

ROOT = Path(__file__).resolve().parent.parent
EDITION = "2022-02"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "config.toml")


def make_item(key: str, **fields: object) -> Item:
    values: dict[str, object] = {
        "key": key,
        "sha256": "0" * 64,
        "title": f"Title of {key}",
        "section": "wg1",
        "date": dt.date(2022, 1, 17),
    }
    values.update(fields)
    return Item(**values)  # type: ignore[arg-type]


def write_item(folder: Path, name: str, title: str, **fields: str) -> None:
    extra = "".join(f"{k}: {v}\n" for k, v in fields.items())
    text = f"---\ntitle: {title}\nsection: wg1\ndate: 2022-02-02\n{extra}---\nText.\n"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def keys(edition: Edition) -> list[str]:
    return [i.key for i in edition.items]


def reasons(edition: Edition) -> dict[str, str]:
    return {lo.key: lo.reason for lo in edition.left_out}


# -- selection ---------------------------------------------------------------------------


def test_draft_item_is_left_out_with_its_status_as_reason() -> None:
    chosen, out = select_items([make_item("a.md", status="draft")], EDITION, ())
    assert chosen == []
    assert [(o.key, o.reason) for o in out] == [
        ("a.md", "status is 'draft' (write 'status: ready')")
    ]


def test_item_pinned_to_another_edition_is_left_out() -> None:
    chosen, out = select_items([make_item("a.md", edition="2022-03")], EDITION, ())
    assert chosen == []
    assert out[0].reason == "pinned to edition 2022-03"


def test_item_pinned_to_this_edition_is_in_even_if_published_before() -> None:
    item = make_item("a.md", edition=EDITION)
    chosen, out = select_items([item], EDITION, published={"a.md"})
    assert (chosen, out) == ([item], [])


def test_unpinned_ready_item_not_yet_sent_is_in() -> None:
    item = make_item("a.md")
    assert select_items([item], EDITION, ()) == ([item], [])


def test_unpinned_item_published_in_a_sent_edition_is_left_out() -> None:
    chosen, out = select_items([make_item("a.md")], EDITION, published=frozenset({"a.md"}))
    assert chosen == []
    assert out[0].reason == "already published in an edition that was sent"


def test_sample_edition_holds_the_seed_items_and_leaves_out_draft_and_march(
    config: Config,
) -> None:
    loaded = load(config)
    edition = assemble(config, EDITION, loaded.items)
    assert keys(edition) == [
        "2022-02/newsflash-launch.md",
        "2022-02/wg1-meeting-17-january.md",
        "2022-02/battery-albatts-results.md",
        "2022-02/agenda-drives-albatts.md",
    ]
    assert reasons(edition) == {
        "2022-03/drives-final-conference.md": "pinned to edition 2022-03",
        "drafts/wg2-training-offer.md": "status is 'draft' (write 'status: ready')",
    }
    march = assemble(config, "2022-03", loaded.items, published=set(keys(edition)))
    assert "2022-03/drives-final-conference.md" in keys(march)
    assert "2022-02/wg1-meeting-17-january.md" not in keys(march)


def test_duplicate_titles_in_one_edition_leave_one_out_naming_the_other(
    workspace: Path,
) -> None:
    sub = workspace / "submissions"
    write_item(sub, "wg1/a-meeting.md", "WG1 meets in Brussels")
    write_item(sub, "wg1/b-meeting.md", "wg1 MEETS in Brussels")
    config = load_config(workspace / "config.toml")
    loaded = load(config)

    edition = assemble(config, EDITION, loaded.items)

    assert "wg1/a-meeting.md" in keys(edition)
    assert "wg1/b-meeting.md" not in keys(edition)
    reason = reasons(edition)["wg1/b-meeting.md"]
    assert "same title as wg1/a-meeting.md" in reason
    assert "different title" in reason


def test_after_the_send_started_each_left_out_item_keeps_its_own_reason() -> None:
    """Regression (issue 13): a draft and an item pinned to 2022-03 were said to have
    "arrived after this edition started sending", though both were there all along."""
    frozen = {"sent.md"}
    chosen, out = select_items(
        [
            make_item("sent.md"),
            make_item("draft.md", status="draft"),
            make_item("march.md", edition="2022-03"),
            make_item("old.md"),
            make_item("late.md"),
            make_item("late-pinned.md", edition=EDITION),
        ],
        EDITION,
        published={"old.md"},
        frozen=frozen,
    )
    assert [i.key for i in chosen] == ["sent.md"]
    why = {o.key: o.reason for o in out}
    assert why["draft.md"] == "status is 'draft' (write 'status: ready')"
    assert why["march.md"] == "pinned to edition 2022-03"
    assert why["old.md"] == "already published in an edition that was sent"
    assert why["late.md"].startswith("not part of this edition when its send started")
    assert "a later edition takes it" in why["late.md"]
    assert why["late-pinned.md"].startswith(f"pinned to edition {EDITION}, but not part of it")
    assert "pin it to a later edition" in why["late-pinned.md"]


def test_same_title_in_different_editions_is_no_duplicate() -> None:
    a = make_item("a.md", title="Same")
    b = make_item("b.md", title="Same", edition="2022-03")
    chosen, out = select_items([a, b], EDITION, ())
    assert chosen == [a]
    assert [o.reason for o in out] == ["pinned to edition 2022-03"]


# -- a broken item never stops the others --------------------------------------------------


def test_broken_item_is_left_out_as_invalid_and_the_others_still_build(workspace: Path) -> None:
    sub = workspace / "submissions" / "2022-02"
    (sub / "broken.md").write_text(
        "---\ntitle: Broken\nsection: wg1\ndate: 17 January 2022\n---\nText.\n", encoding="utf-8"
    )
    (sub / "not-utf8.md").write_bytes("---\ntitle: Réunion\n---\n".encode("latin-1"))
    config = load_config(workspace / "config.toml")

    build = build_edition(config, EDITION)

    assert len(build.edition.items) == 4
    left = reasons(build.edition)
    assert left["2022-02/broken.md"].startswith("invalid: ")
    assert "'17 January 2022' is not a date" in left["2022-02/broken.md"]
    assert left["2022-02/not-utf8.md"].startswith("invalid: ")
    assert "not UTF-8" in left["2022-02/not-utf8.md"]
    assert {p.path for p in build.load.errors} == {"2022-02/broken.md", "2022-02/not-utf8.md"}
    out = write_build(config, build)
    assert (out / "email.html").is_file()
    assert "Broken" not in (out / "email.html").read_text(encoding="utf-8")


def test_failed_file_without_a_recorded_problem_still_gets_a_reason(config: Config) -> None:
    edition = assemble(config, EDITION, [], failed=["gone.md"])
    assert reasons(edition) == {"gone.md": "invalid: see newsflash check"}


# -- order -------------------------------------------------------------------------------


def test_items_ordered_by_order_then_date_within_their_section(config: Config) -> None:
    items = [
        make_item("late-first.md", order=1, date=dt.date(2022, 1, 30)),
        make_item("default-order.md", date=dt.date(2022, 1, 1)),
        make_item("early-first.md", order=1, date=dt.date(2022, 1, 2)),
        make_item("zero.md", order=0, date=dt.date(2022, 1, 31)),
        make_item("negative.md", order=-5, date=dt.date(2022, 2, 1)),
    ]
    edition = assemble(config, EDITION, items)
    assert keys(edition) == [
        "negative.md",
        "zero.md",
        "early-first.md",
        "late-first.md",
        "default-order.md",
    ]


def test_sections_follow_config_order_and_empty_sections_are_omitted(config: Config) -> None:
    items = [
        make_item("e.md", section="events"),
        make_item("a.md", section="alliance"),
        make_item("b.md", section="battery"),
    ]
    edition = assemble(config, EDITION, items)
    assert [s.key for s in edition.sections] == ["alliance", "battery", "events"]
    assert [s.title for s in edition.sections] == ["Alliance news", "Battery subgroup", "Agenda"]


def test_assembly_does_not_depend_on_input_order(config: Config) -> None:
    items = [make_item(f"{n}.md", order=n % 3, date=dt.date(2022, 1, n + 1)) for n in range(9)]
    forward = assemble(config, EDITION, items)
    backward = assemble(config, EDITION, list(reversed(items)))
    assert keys(forward) == keys(backward)
    assert forward.manifest_hash == backward.manifest_hash


# -- numbering and titles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edition_id", "number"),
    [("2022-02", 1), ("2022-03", 2), ("2022-12", 11), ("2023-01", 12), ("2024-02", 25)],
)
def test_edition_number_counts_months_from_first_edition(edition_id: str, number: int) -> None:
    assert edition_number(edition_id, "2022-02") == number


def test_edition_before_the_first_is_refused_naming_first_edition() -> None:
    with pytest.raises(BuildError, match="before the first edition 2022-02"):
        edition_number("2022-01", "2022-02")


@pytest.mark.parametrize("bad", ["2022-13", "2022-00", "2022-2", "22-02", "February", ""])
def test_bad_edition_id_is_refused_with_how_to_write_it(bad: str) -> None:
    with pytest.raises(BuildError, match="write YYYY-MM"):
        parse_edition_id(bad)


def test_sample_edition_number_title_and_month(config: Config) -> None:
    edition = assemble(config, EDITION, [])
    assert (edition.id, edition.number, edition.month) == (EDITION, 1, "February 2022")
    assert edition.title.startswith("The launch of partners’ Newsflash")
    later = assemble(config, "2022-05", [])
    assert (later.number, later.title) == (4, f"ASA Newsflash – {month_label('2022-05')}")


# -- manifest ----------------------------------------------------------------------------


def test_manifest_lists_included_items_with_their_sha256_only(config: Config) -> None:
    items = [
        make_item("b.md", sha256="b" * 64),
        make_item("a.md", sha256="a" * 64),
        make_item("draft.md", status="draft"),
    ]
    edition = assemble(config, EDITION, items, template_sha256="t" * 64)
    m = edition.manifest
    assert m["items"] == [
        {"path": "a.md", "sha256": "a" * 64},
        {"path": "b.md", "sha256": "b" * 64},
    ]
    assert (m["edition"], m["template_sha256"], m["config_sha256"]) == (
        EDITION,
        "t" * 64,
        config.content_sha256(EDITION),
    )
    assert edition.manifest_hash == m["content_sha256"]
    assert len(edition.manifest_hash) == 64


def test_manifest_hash_is_stable_for_the_same_inputs(config: Config) -> None:
    loaded = load(config)
    th = template_hash(config.templates_dir)
    first = assemble(config, EDITION, loaded.items, template_sha256=th)
    again = assemble(config, EDITION, load(config).items, template_sha256=th)
    assert first.manifest == again.manifest
    assert (
        first.manifest_hash
        == build_manifest(EDITION, first.items, th, config.content_sha256(EDITION))[
            "content_sha256"
        ]
    )


def test_manifest_hash_changes_when_one_byte_of_an_item_changes(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    before = build_edition(config, EDITION).edition.manifest_hash
    path = workspace / "submissions" / "2022-02" / "agenda-drives-albatts.md"
    data = bytearray(path.read_bytes())
    data[-2] ^= 1  # the full stop of the last sentence
    path.write_bytes(bytes(data))
    after = build_edition(config, EDITION).edition.manifest_hash
    assert before != after


def test_manifest_hash_ignores_items_left_out(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    before = build_edition(config, EDITION).edition.manifest_hash
    draft = workspace / "submissions" / "drafts" / "wg2-training-offer.md"
    draft.write_text(draft.read_text(encoding="utf-8") + "\nMore.\n", encoding="utf-8")
    assert build_edition(config, EDITION).edition.manifest_hash == before


def test_manifest_hash_changes_when_a_template_changes(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    before = template_hash(config.templates_dir)
    edition_before = build_edition(config, EDITION).edition.manifest_hash
    own_template(workspace, "partials/footer.mjml.j2", "\n")
    assert template_hash(config.templates_dir) != before
    assert build_edition(config, EDITION).edition.manifest_hash != edition_before


def test_manifest_hash_changes_when_the_config_changes(config: Config) -> None:
    text = config.path.read_text(encoding="utf-8")
    changed = parse_config(
        text.replace('accent_color = "#0b4f8a"', 'accent_color = "#0b4f8b"'), config.path
    )
    items = load(config).items
    assert changed.sha256 != config.sha256
    a = assemble(config, EDITION, items, template_sha256="t")
    b = assemble(changed, EDITION, items, template_sha256="t")
    assert a.manifest_hash != b.manifest_hash


def test_manifest_hash_ignores_settings_that_do_not_shape_the_email(config: Config) -> None:
    text = config.path.read_text(encoding="utf-8")
    retimed = parse_config(
        text.replace("grace_hours = 6", "grace_hours = 3").replace(
            "batch_size = 1000", "batch_size = 500"
        ),
        config.path,
    )
    items = load(config).items
    assert retimed.sha256 != config.sha256
    a = assemble(config, EDITION, items, template_sha256="t")
    b = assemble(retimed, EDITION, items, template_sha256="t")
    assert a.manifest_hash == b.manifest_hash


def test_manifest_hash_changes_when_the_item_set_changes(config: Config) -> None:
    items = [make_item("a.md"), make_item("b.md")]
    both = assemble(config, EDITION, items)
    one = assemble(config, EDITION, items[:1])
    renamed = assemble(config, EDITION, [items[0], dataclasses.replace(items[1], key="c.md")])
    assert len({both.manifest_hash, one.manifest_hash, renamed.manifest_hash}) == 3


def test_load_items_and_assemble_share_one_key_per_file(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    loaded = load_items(config.submissions_dir, config.section_keys)
    assert {i.key for i in loaded.items} == {
        str(p.relative_to(config.submissions_dir).as_posix())
        for p in config.submissions_dir.rglob("*.md")
    }


def test_clickable_is_kept_by_each_body_and_no_caller_changes_a_kept_answer() -> None:
    """A warm process records `clickable` on every build: each unchanged body's links come
    from memory (a hit per item, no regex), an edited body gives its new links, and the lists
    handed out are fresh, so changing one (as a report's damage test does) changes no later
    answer. Fails on a build that runs the href regex over every body again."""
    body = '<p><a href="https://a.example/x?y=1&amp;z=2">a</a> <a href=" ">blank</a></p>'
    one = make_item("2022-02/one.md", body_html=body, link="https://one.example/")
    two = make_item("2022-02/two.md", body_html=body)
    edition_mod._body_links.cache_clear()
    first = clickable([one, two])
    first["2022-02/one.md"]["links"].append("https://changed.example/")
    before = edition_mod._body_links.cache_info()
    again = clickable([one, two])
    assert edition_mod._body_links.cache_info().hits == before.hits + 2
    assert again == {
        "2022-02/one.md": {
            "title": "Title of 2022-02/one.md",
            "links": ["https://a.example/x?y=1&z=2", "https://one.example/"],
        },
        "2022-02/two.md": {
            "title": "Title of 2022-02/two.md",
            "links": ["https://a.example/x?y=1&z=2"],
        },
    }
    edited = dataclasses.replace(two, body_html='<a href="https://b.example/">b</a>')
    assert clickable([edited])["2022-02/two.md"]["links"] == ["https://b.example/"]
