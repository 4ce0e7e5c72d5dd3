"""The edition pipeline end to end: load items, assemble, render, and write a build folder.

Two phases, as in static-site generators: everything is assembled and checked in memory first,
and only a complete, checked build is written, so a failed build never leaves half a folder.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from newsflash.config import Config
from newsflash.edition import Edition, assemble
from newsflash.errors import BuildError
from newsflash.files import write_atomic
from newsflash.items import LoadResult, load_items
from newsflash.message import message_from, to_mime
from newsflash.personalise import SAMPLE_RECIPIENT_ID, Person
from newsflash.render import RenderedEmail, Renderer, template_hash

LEDGER_FILE = "ledger.sqlite"
# One ledger per way out, so a rehearsal never counts as having reached anyone through SendGrid.
LEDGER_FILES = {
    "sendgrid": LEDGER_FILE,
    "outbox": "outbox-ledger.sqlite",
    "sendgrid-sandbox": "sandbox-ledger.sqlite",
}
SAMPLE_PERSON = Person(SAMPLE_RECIPIENT_ID, "partner@example.org", "Alex")


@dataclass(frozen=True)
class Build:
    edition: Edition
    email: RenderedEmail
    load: LoadResult


def ledger_path(config: Config, transport_name: str = "sendgrid") -> Path:
    """state/ledger.sqlite for SendGrid; outbox-ledger / sandbox-ledger for rehearsals."""
    try:
        return config.state_dir / LEDGER_FILES[transport_name]
    except KeyError:
        raise BuildError(
            f"no ledger for transport {transport_name!r}; known: {', '.join(LEDGER_FILES)}"
        ) from None


def publication_ledger_name(config: Config) -> str:
    """The ledger that says what partners have received, whoever builds and whatever key
    their shell holds: SendGrid's once it exists, else the outbox's (rehearsals publish to
    later rehearsals), else none yet. Every shell must agree, or an approval given in one
    would not match the edition sent from another."""
    for name in ("sendgrid", "outbox"):
        if ledger_path(config, name).exists():
            return name
    return "sendgrid"


def _read_ledger(
    config: Config, name: str, edition_id: str
) -> tuple[frozenset[str], frozenset[str] | None]:
    """From one ledger: the items other sent editions published, and the item set frozen when
    `edition_id`'s send started there (None if it has not)."""
    path = ledger_path(config, name)
    if not path.exists():
        return frozenset(), None
    from newsflash.state.ledger import Ledger

    with Ledger(path) as ledger:
        return (
            ledger.published_item_keys(exclude_edition=edition_id),
            ledger.frozen_item_keys(edition_id),
        )


def _ledger_view(
    config: Config, edition_id: str, ledger_name: str | None
) -> tuple[frozenset[str], frozenset[str] | None]:
    """What building `edition_id` must respect: items published (by the publication ledger)
    and, if its send started in `ledger_name`'s ledger, the item set frozen there."""
    publication = publication_ledger_name(config)
    published, frozen = _read_ledger(config, publication, edition_id)
    if ledger_name is not None and ledger_name != publication:
        frozen = _read_ledger(config, ledger_name, edition_id)[1]
    return published, frozen


def current_edition_id(config: Config, now: dt.datetime | None = None) -> str:
    """The edition of this month in the newsletter's time zone: the one a send today carries."""
    tz = ZoneInfo(config.model.newsletter.timezone)
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    return f"{now.year:04d}-{now.month:02d}"


def load(config: Config) -> LoadResult:
    return load_items(config.submissions_dir, config.section_keys)


def build_edition(
    config: Config,
    edition_id: str,
    renderer: Renderer | None = None,
    *,
    ledger_name: str | None = None,
) -> Build:
    """Assemble and render in memory; nothing is written.

    Items published by sent editions come from publication_ledger_name's ledger, the same for
    every shell; `ledger_name` (a send's own ledger) adds the item set frozen when this
    edition's send started there, so a resume rebuilds exactly what it began sending."""
    loaded = load(config)
    published, frozen = _ledger_view(config, edition_id, ledger_name)
    edition = assemble(
        config,
        edition_id,
        loaded.items,
        problems=loaded.problems,
        failed=loaded.failed,
        published=published,
        frozen=frozen,
        template_sha256=template_hash(config.templates_dir),
    )
    email = (renderer or Renderer(config)).render(edition)
    return Build(edition, email, loaded)


def manifest_document(build: Build) -> dict[str, object]:
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


def write_build(config: Config, build: Build, *, allow_clip: bool = False) -> Path:
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
