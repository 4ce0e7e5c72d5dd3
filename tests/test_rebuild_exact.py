"""A warm rebuild (every in-process cache kept: files, parsed items, template outputs, the
inliner's layouts) gives exactly what a build from scratch gives, whatever was edited: an
item's text (any characters), its title, order or section, an item added or removed, a
template, the config. Property style: hypothesis draws the edits."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_render_incremental import EDITION, Edits

from newsflash import checks, content, edition, items, read_cache, render_cache
from newsflash.config import Config, load_config
from newsflash.errors import NewsflashError
from newsflash.pipeline import build_edition
from newsflash.render import Renderer
from newsflash.render_inline import Inliner

KINDS = ("body", "title", "add", "remove", "order", "section", "template", "item_template")
KINDS += ("config", "text")
# Markdown's and HTML's own characters, and some that are not ASCII, so a drawn text can
# open a list, a link, a tag or an entity anywhere in an item.
ALPHABET = "ab c\n\n-*_#>[]()<>&;:/.=\"'`!1 é→\t"


def _forget_everything() -> None:
    """Empty every cache the process keeps between builds: what a fresh process starts with."""
    read_cache._files.clear()
    read_cache._listings.clear()
    items._parse_cached.cache_clear()
    content._render_markdown.cache_clear()
    content._wrap_text.cache_clear()
    checks._tag_alone.cache_clear()
    edition._body_links.cache_clear()
    render_cache._digests.clear()
    Inliner.blocks.clear()


def _outcome(config: Config, renderer: Renderer) -> tuple[object, ...]:
    """Everything a build gives that a send, the preview or the ledger uses."""
    try:
        built = build_edition(config, EDITION, renderer)
    except NewsflashError as e:
        return ("error", str(e))
    e, email = built.edition, built.email
    return (
        e.manifest,
        e.sections,
        e.left_out,
        e.problems,
        e.title,
        email.subject,
        email.preheader,
        email.mjml,
        email.html,
        email.text,
        email.checks,
        built.load,
    )


@contextmanager
def _workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="newsflash-rebuild-") as tmp:
        ws = Path(tmp)
        for name in ("config.toml", "subscribers.csv"):
            shutil.copy(ROOT / name, ws / name)
        shutil.copytree(ROOT / "submissions", ws / "submissions")
        yield ws


def _edit(edits: Edits, kind: str, seed: int, text: str) -> None:
    edits.rng.seed(seed)
    if kind == "text":
        path = edits.rng.choice(edits.files())
        path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    else:
        getattr(edits, kind)()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(KINDS),
            st.integers(0, 2**16),
            st.text(alphabet=ALPHABET, max_size=60),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_a_warm_rebuild_after_any_edits_equals_a_build_from_scratch(
    steps: list[tuple[str, int, str]],
) -> None:
    with _workspace() as ws:
        edits = Edits(ws, 0)
        renderers: dict[str, Renderer] = {}  # one per config, as the preview keeps one
        for n, (kind, seed, text) in enumerate([("first", 0, ""), *steps]):
            if n:
                _edit(edits, kind, seed, text)
            config = load_config(ws / "config.toml")
            warm = _outcome(config, renderers.setdefault(config.sha256, Renderer(config)))
            _forget_everything()
            fresh = _outcome(config, Renderer(config))
            assert warm == fresh, f"after {[s[0] for s in steps[:n]]}"


def test_the_rebuilds_compared_are_warm_ones(workspace: Path) -> None:
    """Not a vacuous comparison: between two builds with one item edited, only that item is
    parsed again, only its rows are inlined and only its text is rendered by MJML (the
    caches emptied first: the property test may have parsed this very edit)."""
    _forget_everything()
    config = load_config(workspace / "config.toml")
    renderer = Renderer(config)
    build_edition(config, EDITION, renderer)
    edits = Edits(workspace, 5)
    edits.body()
    before = items._parse_cached.cache_info().misses
    built = build_edition(config, EDITION, renderer)
    assert items._parse_cached.cache_info().misses - before == 1
    assert renderer.templates.inliner.whole == 1 and renderer.templates.inliner.blocks_inlined
    assert (renderer.templates.splicer.whole, renderer.templates.splicer.spliced) == (1, 1)
    assert built.email.html
