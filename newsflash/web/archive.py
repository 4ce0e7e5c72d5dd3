"""The web archive: every sent edition as a static site, with an index and an Atom feed.

    site/index.html            sent editions, newest first
    site/<edition>/index.html  the edition's web version (no unsubscribe link, no greeting)
    site/feed.xml              Atom feed; absolute URLs under config's web_base_url
    site/contributors/         the contributors' guide, which the notices to contributors link to

The email's "view in browser" link is `{web_base_url}/{edition}/`, which a web server answers
with `site/<edition>/index.html`. Links between pages are relative, so the folder works from
any web server, any sub-path, or straight from disk.

"Sent" means the publication ledger (state/ledgers.py) has at least one accepted recipient. Each
edition is rebuilt with the items its send froze into the ledger, so an item added later does
not slip into an edition that already went out.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from newsflash import personalise, pipeline
from newsflash.config import Config
from newsflash.edition import Edition, assemble
from newsflash.errors import BuildError
from newsflash.files import write_atomic
from newsflash.items import LoadResult
from newsflash.months import parse_edition_id
from newsflash.render import Renderer, template_hash
from newsflash.state.ledgers import ledger_path, open_existing, publication_ledger_name
from newsflash.web.guide import GUIDE_PAGE, guide_html, site_env

ATOM = "http://www.w3.org/2005/Atom"
INDEX_TEMPLATE = "archive_index.html.j2"
TAGS = (personalise.FIRST_NAME, personalise.FIRST_NAME_HTML, personalise.RECIPIENT_ID)


@dataclass(frozen=True)
class SentEdition:
    """What the ledger remembers of a sent edition."""

    id: str
    sent_at: dt.datetime
    manifest_hash: str
    manifest: Mapping[str, Any] | None
    published_before: frozenset[str]  # items of the other sent editions


@dataclass(frozen=True)
class Page:
    edition: Edition
    sent_at: dt.datetime
    summary: str
    html: str


@dataclass(frozen=True)
class SiteResult:
    out: Path
    pages: tuple[Page, ...]
    notes: tuple[str, ...]
    ledger: Path


def ledger_file(config: Config) -> Path:
    """The ledger that records what partners received (ledgers.publication_ledger_name)."""
    return ledger_path(config, publication_ledger_name(config))


def _when(value: str | None, edition_id: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value or "")
    except ValueError:
        first = parse_edition_id(edition_id)
        when = dt.datetime(first.year, first.month, first.day)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def sent_editions(config: Config) -> list[SentEdition]:
    """Editions that reached at least one partner, oldest first."""
    ledger = open_existing(config, publication_ledger_name(config))
    if ledger is None:
        return []
    with ledger:
        return [
            SentEdition(
                s.edition_id,
                _when(s.started_at, s.edition_id),
                s.manifest_hash or "",
                ledger.manifest(s.edition_id),
                ledger.published_item_keys(exclude_edition=s.edition_id),
            )
            for s in ledger.editions()
            if ledger.is_sent(s.edition_id)
        ]


def _manifest_items(manifest: Mapping[str, Any] | None) -> dict[str, str] | None:
    """path -> sha256 of the items the send carried; None when the manifest has no list."""
    items = manifest.get("items") if manifest is not None else None
    if not isinstance(items, list):
        return None
    return {
        str(i["path"]): str(i.get("sha256", ""))
        for i in items
        if isinstance(i, dict) and isinstance(i.get("path"), str)
    }


def edition_as_sent(
    config: Config, sent: SentEdition, loaded: LoadResult
) -> tuple[Edition, list[str]]:
    """Assemble the edition with the items its send recorded, noting what changed since."""
    notes: list[str] = []
    published = sent.published_before
    recorded = _manifest_items(sent.manifest)
    if recorded is None:
        notes.append(
            f"{sent.id}: the ledger holds no item list; the web version takes the "
            "items the edition would take today"
        )
        items = list(loaded.items)
    else:
        published = frozenset()
        by_key = {i.key: i for i in loaded.items}
        items = []
        for key, sha in sorted(recorded.items()):
            item = by_key.get(key)
            if item is None:
                notes.append(
                    f"{sent.id}: {key} was sent but is now missing or invalid; the web "
                    "version leaves it out"
                )
                continue
            if sha and sha != item.sha256:
                notes.append(
                    f"{sent.id}: {key} changed since it was sent; the web version shows "
                    "its current text"
                )
            # It went out in this edition, whatever its file says today.
            items.append(replace(item, status="ready", edition=sent.id))
    edition = assemble(
        config,
        sent.id,
        items,
        published=published,
        template_sha256=template_hash(config.templates_dir),
    )
    return edition, notes


class SiteRenderer(Renderer):
    """The web version, with the footer's links relative to the page."""

    def context(self, edition: Edition, *, web: bool = False) -> dict[str, Any]:
        ctx = super().context(edition, web=web)
        ctx["view_url"] = "index.html"
        ctx["archive_url"] = "../index.html"
        return ctx


def render_page(renderer: Renderer, edition: Edition, sent_at: dt.datetime) -> Page:
    email = renderer.render(edition, web=True)
    left = [t for t in TAGS if t in email.html]
    if left:
        raise BuildError(
            f"the web version of {edition.id} still has personal tags "
            f"{', '.join(left)}: wrap them in {{% if not web %}} in templates/."
        )
    return Page(edition, sent_at, renderer.preheader(edition), email.html)


def _atom_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed_xml(config: Config, pages: list[Page], now: dt.datetime | None = None) -> bytes:
    """Atom 1.0 (RFC 4287): ids and links are absolute, as feed readers need."""
    nl = config.model.newsletter
    base = nl.web_base_url.rstrip("/")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, tag, attrs)
        el.text = text
        return el

    # Unqualified names under a default xmlns: ElementTree would otherwise invent ns0: prefixes.
    feed = ET.Element(
        "feed", {"xmlns": ATOM, "{http://www.w3.org/XML/1998/namespace}lang": nl.language}
    )
    sub(feed, "id", f"{base}/")
    sub(feed, "title", nl.name)
    if nl.tagline:
        sub(feed, "subtitle", nl.tagline)
    newest = max((p.sent_at for p in pages), default=now or dt.datetime.now(dt.UTC))
    sub(feed, "updated", _atom_time(newest))
    sub(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/feed.xml")
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    author = sub(feed, "author")
    sub(author, "name", nl.organisation)
    sub(author, "uri", nl.website)
    for page in pages:
        e = page.edition
        entry = sub(feed, "entry")
        sub(entry, "id", f"{base}/{e.id}/")
        month = "" if e.month in e.title else f" ({e.month})"
        sub(entry, "title", f"No. {e.number} – {e.title}{month}")
        sub(entry, "link", rel="alternate", type="text/html", href=f"{base}/{e.id}/")
        sub(entry, "published", _atom_time(page.sent_at))
        sub(entry, "updated", _atom_time(page.sent_at))
        sub(entry, "summary", page.summary)
    ET.indent(feed)
    data: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def index_html(config: Config, pages: list[Page]) -> str:
    return (
        site_env()
        .get_template(INDEX_TEMPLATE)
        .render(newsletter=config.model.newsletter, pages=pages, root="")
    )


def build_site(config: Config) -> tuple[list[Page], list[str]]:
    """Everything in memory first, newest edition first; nothing is written."""
    sent = sent_editions(config)
    loaded = pipeline.load(config)
    renderer = SiteRenderer(config)
    pages: list[Page] = []
    notes: list[str] = []
    for s in sorted(sent, key=lambda s: s.id, reverse=True):
        edition, found = edition_as_sent(config, s, loaded)
        notes += found
        pages.append(render_page(renderer, edition, s.sent_at))
    return pages, notes


def write_site(config: Config) -> SiteResult:
    """Write site/; files of editions no longer in the ledger are left alone."""
    pages, notes = build_site(config)
    out = config.site_dir
    files = {
        out / "index.html": index_html(config, pages).encode(),
        out / "feed.xml": feed_xml(config, pages),
        out / GUIDE_PAGE: guide_html(config).encode(),
    }
    for page in pages:
        files[out / page.edition.id / "index.html"] = page.html.encode()
    for path, data in files.items():
        write_atomic(path, data)  # 0644: a web server must read it
    return SiteResult(out, tuple(pages), tuple(notes), ledger_file(config))
