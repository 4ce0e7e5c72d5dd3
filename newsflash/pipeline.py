"""The edition pipeline end to end: load items, assemble, render, and write a build folder.

Two phases, as in static-site generators: everything is assembled and checked in memory first,
and only a complete, checked build is written, so a failed build never leaves half a folder.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from newsflash.config_loaded import Config
from newsflash.edition import Edition, assemble
from newsflash.email_cache import KeptEmails
from newsflash.errors import BuildError, RenderError
from newsflash.files import write_atomic
from newsflash.items import Item, LoadResult, Problem, load_items
from newsflash.message import message_from, to_mime
from newsflash.personalise import SAMPLE_RECIPIENT_ID, Person
from newsflash.render import RenderedEmail, Renderer, template_hash

SAMPLE_PERSON = Person(SAMPLE_RECIPIENT_ID, "partner@example.org", "Alex")
RENDER_CACHE = "render-cache"  # under state/: emails `newsflash build` rendered, by input hash


@dataclass(frozen=True)
class BuiltEdition:
    """One edition assembled and rendered in memory, with the load it came from: what a build
    writes, a send sends and the preview shows (config.Build is the [build] settings)."""

    edition: Edition
    email: RenderedEmail
    load: LoadResult


def current_edition_id(config: Config, now: dt.datetime | None = None) -> str:
    """The edition of this month in the newsletter's time zone: the one a send today carries."""
    tz = ZoneInfo(config.model.newsletter.timezone)
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    return f"{now.year:04d}-{now.month:02d}"


def cached_renderer(config: Config) -> Renderer:
    """The renderer of `newsflash build`: each email is also kept in state/render-cache and
    the user's cache folder (email_cache), so building an unchanged edition again, or first
    in a new state/, neither renders it nor imports the renderer."""
    renderer = Renderer(config)
    renderer.disk = KeptEmails(config.state_dir / RENDER_CACHE)
    return renderer


def load(config: Config) -> LoadResult:
    return load_items(config.submissions_dir, config.section_keys)


def _render_fault(config: Config, renderer: Renderer, edition: Edition) -> str | None:
    """Why the build could not send this edition, worded for an item's contributor; None if
    it renders and passes every check."""
    try:
        email = renderer.render(edition)
    except RenderError as e:
        return f"the email cannot be rendered with this item ({e}). Remove unusual markup."
    errors = {c.name: c for c in email.checks if c.level == "error"}
    if "size" in errors:
        limit = config.model.build.size_limit_kb
        return (
            f"this item alone makes the email {email.size / 1024:.0f} KB, over Gmail's "
            f"~{limit} KB clipping limit. Shorten the text and put the rest behind "
            "'link: https://...'."
        )
    if errors:
        return (
            "the build refuses the email with this item ("
            + "; ".join(c.message for c in errors.values())
            + "). Use full https:// addresses and give every image its 'image_alt:'."
        )
    return None


def item_faults(
    config: Config, items: Sequence[Item], edition_id: str, renderer: Renderer | None = None
) -> list[Problem]:
    """Items the build cannot carry even alone in an edition, as problems against their files.

    This is the rule `check` and the build share, so that an item `check` passes always
    builds and one bad item is left out instead of stopping the edition. Faults only grow
    with the set of items (a subset of an email that renders and fits renders and fits), so
    the search halves the set and skips every half that passes: a clean set costs one render,
    and 100 items too large together about a dozen. An edition that fails without any item
    (a template or config fault) blames no item."""
    renderer = renderer or Renderer(config)

    def fault(chosen: Sequence[Item]) -> str | None:
        edition = assemble(
            config, edition_id, [replace(i, status="ready", edition=None) for i in chosen]
        )
        if len(edition.items) < len(chosen):  # a shared title left one out: try them apart
            return "not all items rendered together"
        return _render_fault(config, renderer, edition)

    def search(chosen: Sequence[Item], reason: str) -> list[Problem]:
        if len(chosen) == 1:
            return [Problem(chosen[0].key, reason)]
        half = len(chosen) // 2
        found: list[Problem] = []
        for part in (chosen[:half], chosen[half:]):
            why = fault(part)
            if why is not None:
                found += search(part, why)
        return found

    reason = fault(items) if items else None
    if reason is None or fault([]) is not None:
        return []
    return search(items, reason)


def without_faulty(loaded: LoadResult, faults: Sequence[Problem]) -> LoadResult:
    """The load result with the faulty items moved to the failed files, their reasons kept."""
    if not faults:
        return loaded
    bad = {p.path for p in faults}
    return LoadResult(
        tuple(i for i in loaded.items if i.key not in bad),
        (*loaded.problems, *faults),
        (*loaded.failed, *sorted(bad)),
    )


def check_items(config: Config, renderer: Renderer | None = None) -> LoadResult:
    """What `newsflash check` reports: every file's own problems, and every item the build
    would leave out because the email cannot carry it (too large alone, or unrenderable)."""
    loaded = load(config)
    edition_id = config.model.newsletter.first_edition
    return without_faulty(loaded, item_faults(config, loaded.items, edition_id, renderer))


def build_edition(
    config: Config,
    edition_id: str,
    renderer: Renderer | None = None,
    *,
    published: frozenset[str] = frozenset(),
    frozen: frozenset[str] | None = None,
) -> BuiltEdition:
    """Assemble and render in memory; nothing is written, no ledger is read.

    `published`: items that sent editions already carried, left out here; `frozen`: the item
    set this edition's send started with, so a resume rebuilds exactly what it began sending
    (state/ledgers.build_edition reads both from the ledgers)."""
    loaded = load(config)
    renderer = renderer or Renderer(config)

    def assembled(result: LoadResult) -> Edition:
        return assemble(
            config,
            edition_id,
            result.items,
            problems=result.problems,
            failed=result.failed,
            published=published,
            frozen=frozen,
            template_sha256=template_hash(config.templates_dir),
        )

    edition = assembled(loaded)
    try:
        email = renderer.render(edition)
        failed = not email.ok
    except RenderError:
        failed = True
    if failed:  # find the items the email cannot carry, as `check` does, and leave them out
        faults = item_faults(config, edition.items, edition_id, renderer)
        if faults:
            loaded = without_faulty(loaded, faults)
            edition = assembled(loaded)
        email = renderer.render(edition)  # a fault no item explains stops the build, as before
    return BuiltEdition(edition, email, loaded)


def manifest_document(build: BuiltEdition) -> dict[str, object]:
    e = build.edition
    return {
        **e.manifest,
        "number": e.number,
        "title": e.title,
        "subject": build.email.subject,
        "preheader": build.email.preheader,
        "html_bytes": build.email.size,
        "sections": [{"key": s.key, "items": [i.key for i in s.items]} for s in e.sections],
        "left_out": [{"path": lo.key, "reason": lo.reason} for lo in e.left_out],
        "checks": [
            {"name": c.name, "level": c.level, "message": c.message} for c in build.email.checks
        ],
    }


def write_build(config: Config, build: BuiltEdition, *, allow_clip: bool = False) -> Path:
    """Write build/<edition>/ with the five files; refuses a build that fails its checks."""
    errors = [
        c
        for c in build.email.checks
        if c.level == "error" and not (allow_clip and c.name == "size")
    ]
    if errors:
        raise BuildError("; ".join(c.message for c in errors))
    out = config.build_dir / build.edition.id
    out.mkdir(parents=True, exist_ok=True)
    message = message_from(config, build.email)
    eml = to_mime(message, SAMPLE_PERSON)
    files = {
        "email.html": build.email.html.encode(),
        "email.txt": build.email.text.encode(),
        "email.mjml": build.email.mjml.encode(),
        "preview.eml": eml.as_bytes(),
        "manifest.json": (
            json.dumps(manifest_document(build), indent=2, ensure_ascii=False) + "\n"
        ).encode(),
    }
    for name, data in files.items():
        write_atomic(out / name, data)
    return out
