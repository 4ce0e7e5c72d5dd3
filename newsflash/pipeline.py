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
    """The ledger that says what partners have received: SendGrid's once it exists.

    Before any real send, the ledger of the transport a send would use now (the outbox
    without a key), so a rehearsal publishes its items to later rehearsals. Once SendGrid's
    ledger exists it is the authority, with or without a key in the shell that builds.
    """
    if ledger_path(config, "sendgrid").exists():
        return "sendgrid"
    from newsflash.sending import default_ledger_name

    return default_ledger_name(config)


def published_keys(
    config: Config, exclude_edition: str, ledger_name: str | None = None
) -> frozenset[str]:
    """Items carried by editions already sent (see publication_ledger_name for which ledger)."""
    return _ledger_view(config, exclude_edition, ledger_name)[0]


def _ledger_view(
    config: Config, edition_id: str, ledger_name: str | None
) -> tuple[frozenset[str], frozenset[str] | None]:
    """What the ledger says about building `edition_id`: the items other sent editions
    published, and the item set frozen when this edition's send started (None if it has not)."""
    path = ledger_path(config, ledger_name or publication_ledger_name(config))
    if not path.exists():
        return frozenset(), None
    from newsflash.ledger import Ledger

    with Ledger(path) as ledger:
        return (
            ledger.published_item_keys(exclude_edition=edition_id),
            ledger.frozen_item_keys(edition_id),
        )


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

    `ledger_name` picks the ledger whose sent editions count as published (default: the
    ledger of the transport a send would use now; see published_keys)."""
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
