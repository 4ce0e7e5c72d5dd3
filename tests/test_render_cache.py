"""The render caches: an unchanged edition is not rendered twice, and a stale email never comes
back. Every input that shapes the email (an item, a template in the workspace or the package,
a file a template includes, a config key that shows, the code) is changed in turn, and the
cached result must equal what a renderer without any cache makes of the changed workspace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import own_template

from newsflash import pipeline, render, render_cache
from newsflash.config import load_config
from newsflash.pipeline import BuiltEdition
from newsflash.render import RenderedEmail, Renderer
from newsflash.render_cache import KEEP_ON_DISK, DiskCache
from newsflash.web.archive import SiteRenderer

ED = "2022-02"


def cache_dir(workspace: Path) -> Path:
    return workspace / "state" / pipeline.RENDER_CACHE


def build(workspace: Path, renderer: Renderer | None = None) -> tuple[BuiltEdition, Renderer]:
    """Build as a new process's renderer over state/render-cache alone does, unless one is
    given (a long-running preview's); `newsflash build` also reads the user's cache folder,
    whose own tests are in test_email_cache.py."""
    config = load_config(workspace / "config.toml")
    renderer = renderer or Renderer(config, cache_dir=cache_dir(workspace))
    return pipeline.build_edition(config, ED, renderer), renderer


def uncached(workspace: Path) -> RenderedEmail:
    """The truth: the edition rendered by a renderer that has never seen it and keeps nothing."""
    config = load_config(workspace / "config.toml")
    return pipeline.build_edition(config, ED, Renderer(config)).email


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_second_build_of_unchanged_inputs_renders_nothing_and_gives_the_same_email(
    workspace: Path,
) -> None:
    first, one = build(workspace)
    again, other = build(workspace)  # a second process: nothing shared but state/
    assert (one.renders, other.renders) == (1, 0)
    assert again.email == first.email == uncached(workspace)
    assert len(list(cache_dir(workspace).glob("*.json"))) == 1


def test_a_renderer_without_a_cache_folder_renders_an_unchanged_edition_once_and_writes_nothing(
    workspace: Path,
) -> None:
    config = load_config(workspace / "config.toml")
    renderer = Renderer(config)
    first = pipeline.build_edition(config, ED, renderer)
    again = pipeline.build_edition(config, ED, renderer)
    assert renderer.renders == 1 and again.email == first.email
    assert not (workspace / "state").exists()


def _item_text(ws: Path) -> None:
    edit(ws / "submissions/2022-02/wg1-meeting-17-january.md", "Working Group 1", "WG One")


def _item_title(ws: Path) -> None:
    path = ws / "submissions/2022-02/newsflash-launch.md"
    edit(path, "title: ", "title: Now: ")


def _item_added(ws: Path) -> None:
    (ws / "submissions/2022-02/late-news.md").write_text(
        "---\ntitle: Late news from the secretariat\nsection: alliance\ndate: 2022-02-03\n"
        "status: ready\n---\nA late item.\n",
        encoding="utf-8",
    )


def _item_removed(ws: Path) -> None:
    (ws / "submissions/2022-02/agenda-drives-albatts.md").unlink()


def _workspace_template(ws: Path) -> None:
    own_template(ws, "edition.txt.j2", "\nP.S. A word from the secretariat.\n")


def _subject(ws: Path) -> None:
    edit(ws / "config.toml", 'subject = "{name} No. {number}', 'subject = "{name} #{number}')


def _footer_sender(ws: Path) -> None:
    edit(ws / "config.toml", 'from_name = "The ASA Secretariat"', 'from_name = "The ASA Office"')


def _public_url(ws: Path) -> None:
    """The unsubscribe link's host, which the manifest's config hash leaves out."""
    edit(
        ws / "config.toml",
        'public_url = "https://newsflash.example.org"',
        'public_url = "https://nf.example.net"',
    )


def _edition_preheader(ws: Path) -> None:
    edit(
        ws / "config.toml", 'preheader = "The first ASA Newsflash', 'preheader = "ASA Newsflash one'
    )


def _size_limit(ws: Path) -> None:
    """Not in the email but in its checks: a lower limit must fail the build it passed."""
    edit(
        ws / "config.toml",
        "size_warn_kb = 90\nsize_limit_kb = 102",
        "size_warn_kb = 5\nsize_limit_kb = 10",
    )


CHANGES: dict[str, Callable[[Path], None]] = {
    "an item's text": _item_text,
    "an item's title": _item_title,
    "an item added": _item_added,
    "an item removed": _item_removed,
    "a template of the workspace": _workspace_template,
}
# A Renderer holds the config it was made with (the preview makes a new one when config.toml
# changes), so these reach a long-running process as a new renderer: they matter on disk.
CONFIG_CHANGES: dict[str, Callable[[Path], None]] = {
    "the subject's format": _subject,
    "the sender named in the footer": _footer_sender,
    "serve's public url in the unsubscribe link": _public_url,
    "the edition's preheader": _edition_preheader,
    "the size limits of the checks": _size_limit,
}


CASES = [
    *((change, where) for change in CHANGES.values() for where in ("on disk", "in memory")),
    *((change, "on disk") for change in CONFIG_CHANGES.values()),
]
IDS = [
    *(f"{where}-{name}" for name in CHANGES for where in ("on disk", "in memory")),
    *(f"on disk-{name}" for name in CONFIG_CHANGES),
]


@pytest.mark.parametrize(("change", "where"), CASES, ids=IDS)
def test_changing_any_input_renders_anew_and_gives_what_an_uncached_render_gives(
    workspace: Path, change: Callable[[Path], None], where: str
) -> None:
    before, long_running = build(workspace)
    change(workspace)
    truth = uncached(workspace)
    assert (truth.html, truth.text, truth.subject, truth.checks) != (
        before.email.html,
        before.email.text,
        before.email.subject,
        before.email.checks,
    ), "the change must show, or this test proves nothing"
    after, _ = build(workspace, long_running if where == "in memory" else None)
    assert after.email == truth


@pytest.mark.parametrize("where", ["on disk", "in memory"])
def test_a_changed_file_that_a_template_includes_renders_anew(workspace: Path, where: str) -> None:
    """A file that is not ``*.j2``: the approval's template hash leaves it out, the render
    cache must not."""
    own_template(workspace, "edition.txt.j2", '\n{% include "signature.txt" %}\n')
    signature = workspace / "templates" / "signature.txt"
    signature.write_text("The secretariat\n", encoding="utf-8")
    before, long_running = build(workspace)
    signature.write_text("The new secretariat\n", encoding="utf-8")
    after, _ = build(workspace, long_running if where == "in memory" else None)
    assert after.email == uncached(workspace) != before.email
    assert "The new secretariat" in after.email.text


def test_a_changed_package_template_renders_anew(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade that changes newsflash's own design, with the version number unchanged."""
    package = tmp_path_factory.mktemp("package") / "templates"
    shutil.copytree(render.PACKAGE_TEMPLATES, package)
    monkeypatch.setattr(render, "PACKAGE_TEMPLATES", package)
    before, _ = build(workspace)
    with (package / "edition.txt.j2").open("a", encoding="utf-8") as f:
        f.write("\nThe package's new closing line.\n")
    after, renderer = build(workspace)
    assert renderer.renders == 1 and after.email == uncached(workspace)
    assert "new closing line" in after.email.text and "new closing line" not in before.email.text


def test_other_rendering_code_renders_anew(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An email kept by another version of newsflash (or of a library) is not used."""
    build(workspace)
    monkeypatch.setattr(render_cache, "code_fingerprint", lambda: "another version")
    _, renderer = build(workspace)
    assert renderer.renders == 1
    assert len(list(cache_dir(workspace).glob("*.json"))) == 2


def test_the_web_version_and_the_email_are_kept_apart(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    edition = pipeline.build_edition(config, ED, Renderer(config)).edition
    renderer = Renderer(config)
    email, web = renderer.render(edition), renderer.render(edition, web=True)
    site = SiteRenderer(config).render(edition, web=True)
    assert renderer.renders == 2
    assert len({email.html, web.html, site.html}) == 3
    assert renderer.render(edition) == email and renderer.renders == 2


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _not_an_object(path: Path) -> None:
    path.write_text("[1, 2, 3]", encoding="utf-8")


def _another_key(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**doc, "key": "0" * 64}), encoding="utf-8")


def _html_not_text(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**doc, "html": 42}), encoding="utf-8")


def _a_part_missing(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    del doc["text"]
    path.write_text(json.dumps(doc), encoding="utf-8")


def _binary(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x00garbage\x80")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _unreadable(path: Path) -> None:
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make it unreadable another way
        _a_folder(path)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncated,
    "a JSON list": _not_an_object,
    "another edition's key inside": _another_key,
    "html not text": _html_not_text,
    "a part missing": _a_part_missing,
    "binary garbage": _binary,
    "empty": _empty,
    "a folder in its place": _a_folder,
    "unreadable": _unreadable,
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_cache_file_is_rendered_anew_without_an_error(
    workspace: Path, damage: Callable[[Path], None]
) -> None:
    first, _ = build(workspace)
    [kept] = cache_dir(workspace).glob("*.json")
    damage(kept)
    again, renderer = build(workspace)
    assert renderer.renders == 1 and again.email == first.email


def test_a_cache_folder_that_cannot_be_written_costs_a_render_not_the_build(
    workspace: Path,
) -> None:
    (workspace / "state").mkdir()
    cache_dir(workspace).write_text("not a folder", encoding="utf-8")
    first, _ = build(workspace)
    again, renderer = build(workspace)
    assert renderer.renders == 1 and again.email == first.email == uncached(workspace)


def test_only_the_newest_emails_are_kept_on_disk(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path)
    parts = dict.fromkeys(render_cache.PARTS, "x")
    for n in range(KEEP_ON_DISK + 3):
        disk.put(f"{n:064d}", parts)
        os.utime(tmp_path / f"{n:064d}.json", ns=(n * 10**9, n * 10**9))
    disk.put("f" * 64, parts)
    kept = sorted(p.stem for p in tmp_path.glob("*.json"))
    assert len(kept) == KEEP_ON_DISK and f"{0:064d}" not in kept and "f" * 64 in kept
    assert disk.get("f" * 64) == parts


def test_newsflash_build_again_writes_the_same_files_without_loading_the_renderer(
    workspace: Path,
) -> None:
    """The cold-start claim itself, in a fresh interpreter: the second `newsflash build` of
    unchanged inputs imports neither Jinja2, mjml-python, premailer, cssutils nor lxml."""
    code = (
        "import sys\nfrom newsflash.cli import main\n"
        f"try:\n    main(['--config', {str(workspace / 'config.toml')!r}, 'build', {ED!r}])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('jinja2', 'mjml', 'premailer', 'cssutils', 'lxml')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )

    def run() -> tuple[str, dict[str, bytes]]:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=workspace
        )
        assert done.returncode == 0, done.stderr
        out = workspace / "build" / ED
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        del files["preview.eml"]  # its MIME boundary is new in every build
        return done.stdout.strip().splitlines()[-1], files

    first_modules, first_files = run()
    again_modules, again_files = run()
    assert "premailer" in first_modules and again_modules == "[]"
    assert again_files == first_files and len(again_files) == 4


def test_a_build_started_another_way_reads_the_email_the_first_one_kept(
    workspace: Path, tmp_path: Path
) -> None:
    """The key holds the libraries' versions, not the shape of sys.path: a build under
    `python -m cProfile` (which puts the script's folder on sys.path once more) finds the
    email a plain `python script.py` rendered, and imports no renderer."""
    script = tmp_path / "build_once.py"
    script.write_text(
        "import sys\nfrom newsflash.cli import main\n"
        f"try:\n    main(['--config', {str(workspace / 'config.toml')!r}, 'build', {ED!r}])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('mjml', 'premailer') if m in sys.modules))\n",
        encoding="utf-8",
    )

    def run(*start: str) -> str:
        shutil.rmtree(workspace / "state" / "build-stamp", ignore_errors=True)
        done = subprocess.run(
            [sys.executable, *start, str(script)], capture_output=True, text=True, cwd=workspace
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert run() == "['mjml', 'premailer']"
    assert run("-m", "cProfile", "-o", str(tmp_path / "profile")) == "[]"


def _key_of(*values: object) -> str | None:
    return render_cache.render_key({"values": values}, ())


def test_an_item_kept_by_its_hash_still_changes_the_key_when_any_field_changes(
    workspace: Path,
) -> None:
    """The key writes each unchangeable item once and keeps its hash by the object: another
    item object, equal but for one field (the anchor too, which equality ignores), is another
    key; the same object gives the same key again."""
    config = load_config(workspace / "config.toml")
    item = pipeline.load(config).items[0]
    first = _key_of(item)
    assert _key_of(item) == first
    for name, value in (("body_html", item.body_html + "<p>x</p>"), ("anchor", "other")):
        changed = dataclasses.replace(item, **{name: value})
        assert _key_of(changed) not in (first, None), name


@dataclasses.dataclass(frozen=True)
class _Holder:
    names: list[str]


@dataclasses.dataclass
class _Open:
    name: str


def test_objects_that_can_change_are_written_out_at_every_key_never_kept_by_identity() -> None:
    """A frozen dataclass holding a list, or one that is not frozen, can change after its
    first key: the next key must see the change."""
    holder, open_one = _Holder(["a"]), _Open("a")
    before = (_key_of(holder), _key_of(open_one))
    holder.names.append("b")
    open_one.name = "b"
    assert _key_of(holder) != before[0] and _key_of(open_one) != before[1]
