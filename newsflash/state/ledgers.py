"""Which ledger a send writes, which one counts as published, and opening them: one place.

One ledger per way out (state/ledger.sqlite for SendGrid, outbox-ledger and sandbox-ledger for
rehearsals), so an outbox or sandbox rehearsal never marks a partner as reached by SendGrid.

What partners have received is read from one ledger whoever builds and whatever key their
shell holds (`publication_ledger_name`): an approval given in a reviewer's shell without
SENDGRID_API_KEY must match the edition the service, which has the key, sends. A send's own
ledger adds only the item set frozen when the edition's send started there, so a resume
rebuilds exactly what it began sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsflash.errors import BuildError
from newsflash.render_cache import DiskCache
from newsflash.state.ledger import Ledger

if TYPE_CHECKING:  # types only: the build stamp reads what was published without config.toml
    from newsflash import pipeline
    from newsflash.config import Config
    from newsflash.render import Renderer

__all__ = [
    "LEDGER_FILE",
    "LEDGER_FILES",
    "Published",
    "build_edition",
    "default_ledger_name",
    "ledger_name",
    "ledger_path",
    "open_existing",
    "open_ledger",
    "publication_ledger_name",
    "published",
    "published_in",
]

LEDGER_FILE = "ledger.sqlite"
LEDGER_FILES = {
    "sendgrid": LEDGER_FILE,
    "outbox": "outbox-ledger.sqlite",
    "sendgrid-sandbox": "sandbox-ledger.sqlite",
}


def ledger_name(transport_name: str, *, sandbox: bool = False) -> str:
    """Sandbox mode delivers nothing, so it gets a ledger of its own like the outbox."""
    return "sendgrid-sandbox" if transport_name == "sendgrid" and sandbox else transport_name


def default_ledger_name(config: Config) -> str:
    """The ledger a send would write now, from this shell's environment and config.toml."""
    from newsflash.transports.base import default_transport_name  # deferred: see build_edition

    return ledger_name(default_transport_name(), sandbox=config.model.sendgrid.sandbox)


def ledger_path(config: Config, name: str = "sendgrid") -> Path:
    """state/ledger.sqlite for SendGrid; outbox-ledger / sandbox-ledger for rehearsals."""
    return _ledger_file(config.state_dir, name)


def _ledger_file(state_dir: Path, name: str) -> Path:
    try:
        return state_dir / LEDGER_FILES[name]
    except KeyError:
        raise BuildError(
            f"no ledger for transport {name!r}; known: {', '.join(LEDGER_FILES)}"
        ) from None


def publication_ledger_name(config: Config) -> str:
    """The ledger that says what partners have received: SendGrid's once it exists, else the
    outbox's (rehearsals publish to later rehearsals), else none yet."""
    return _publication_ledger_name(config.state_dir)


def _publication_ledger_name(state_dir: Path) -> str:
    for name in ("sendgrid", "outbox"):
        if _ledger_file(state_dir, name).exists():
            return name
    return "sendgrid"


def open_ledger(config: Config, name: str) -> Ledger:
    """The named ledger, created if need be: for what writes (a send, an approval)."""
    return Ledger(ledger_path(config, name))


def open_existing(config: Config, name: str) -> Ledger | None:
    """The named ledger if it exists (None otherwise): reading never creates a state file."""
    path = ledger_path(config, name)
    return Ledger(path) if path.exists() else None


@dataclass(frozen=True)
class Published:
    """What building an edition must respect: items other sent editions carried, and the item
    set frozen when this edition's send started (None if it has not)."""

    items: frozenset[str] = frozenset()
    frozen: frozenset[str] | None = None


def _read(state_dir: Path, name: str, edition_id: str, read_only: bool) -> Published:
    path = _ledger_file(state_dir, name)
    if not path.exists():
        return Published()
    with Ledger(path, read_only=read_only) as ledger:
        return Published(
            ledger.published_item_keys(exclude_edition=edition_id),
            ledger.frozen_item_keys(edition_id),
        )


def published(config: Config, edition_id: str, send_ledger: str | None = None) -> Published:
    """Items published (by the publication ledger) and, if `edition_id`'s send started in
    `send_ledger`, the item set frozen there."""
    return published_in(config.state_dir, edition_id, send_ledger)


def published_in(
    state_dir: Path, edition_id: str, send_ledger: str | None = None, *, read_only: bool = False
) -> Published:
    """`published` from the state folder alone: the build stamp asks it before, and instead
    of, loading config.toml. `read_only` opens each ledger with mode=ro: the file is left
    as it was (no schema script, no write lock, so no wait on a send that holds it), and a
    ledger of an older schema is a StateError rather than brought up to date."""
    publication = _publication_ledger_name(state_dir)
    seen = _read(state_dir, publication, edition_id, read_only)
    if send_ledger is not None and send_ledger != publication:
        frozen = _read(state_dir, send_ledger, edition_id, read_only).frozen
        seen = Published(seen.items, frozen)
    return seen


def build_edition(
    config: Config,
    edition_id: str,
    renderer: Renderer | None = None,
    *,
    ledger_name: str | None = None,
) -> pipeline.BuiltEdition:
    """The pipeline's build of `edition_id` with what the ledgers say was published; `ledger_name`
    (a send's own ledger) adds the item set frozen when this edition's send started there.
    Without a `renderer`, one that reads what `newsflash build` kept in state/render-cache
    (under a key of everything the email depends on) and writes nothing: a send, an approval
    or a job takes the email the approved build rendered instead of rendering it (and
    importing premailer) again, and a dry run still leaves state/ as it was."""
    from newsflash import pipeline  # deferred: a report reads ledgers, never builds (~40 ms)

    seen = published(config, edition_id, ledger_name)
    renderer = renderer or _reading_builds(pipeline.cached_renderer(config))
    return pipeline.build_edition(
        config, edition_id, renderer, published=seen.items, frozen=seen.frozen
    )


class _BuildsOnly(DiskCache):
    """state/render-cache as every caller but `newsflash build` uses it: read, never written."""

    def put(self, key: str, parts: dict[str, str]) -> None:
        return None


def _reading_builds(renderer: Renderer) -> Renderer:
    if renderer.disk is not None:
        renderer.disk = _BuildsOnly(renderer.disk.folder)
    return renderer
