"""An edition: which items go in, in what order, and the manifest that approval and sending sign.

`select_items` is the single place that decides whether an item belongs to an edition, so the
rule "not already published in a sent edition" is consulted in one spot.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from newsflash.config_loaded import Config, EditionSettings
from newsflash.content_rules import links_in
from newsflash.item_model import Item, Problem
from newsflash.months import edition_number, month_label, parse_edition_id


@dataclass(frozen=True)
class LeftOut:
    """An item that is not in the edition, and the reason, so nothing is dropped silently."""

    key: str
    reason: str


@dataclass(frozen=True)
class EditionSection:
    """A config section with the items this edition carries in it (config.Section is the
    section as configured, with no items)."""

    key: str
    title: str
    intro: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Edition:
    """Immutable: approval and sending refer to its manifest hash."""

    id: str
    number: int
    title: str
    month: str
    settings: EditionSettings
    sections: tuple[EditionSection, ...]
    left_out: tuple[LeftOut, ...]
    problems: tuple[Problem, ...]
    manifest: dict[str, Any]
    # This manifest's hash as earlier newsflash versions computed it (Config's
    # earlier_content_sha256s): a send they started resumes as the same edition.
    earlier_manifest_hashes: tuple[str, ...] = ()

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(i for s in self.sections for i in s.items)

    @property
    def manifest_hash(self) -> str:
        return str(self.manifest["content_sha256"])

    def known_as(self, manifest_hash: str | None) -> bool:
        """Whether a recorded hash (an approval's, a frozen send's) is this edition's: its
        manifest now, or as an earlier newsflash hashed the same files and settings, so an
        upgrade between two runs is not taken for an edit."""
        return manifest_hash == self.manifest_hash or manifest_hash in self.earlier_manifest_hashes


def select_items(
    items: Iterable[Item],
    edition_id: str,
    published: Collection[str],
    frozen: Collection[str] | None = None,
) -> tuple[list[Item], list[LeftOut]]:
    """Ready items pinned here, plus unpinned ready items that no sent edition carried yet.

    Once the edition's send has started, `frozen` (its manifest's items) is the whole choice:
    a file that arrives later goes into a later edition instead of changing this one.
    """
    chosen: list[Item] = []
    out: list[LeftOut] = []
    for item in items:
        reason = _reason_left_out(item, edition_id, published, frozen)
        if reason is None:
            chosen.append(item)
        else:
            out.append(LeftOut(item.key, reason))
    seen: dict[str, str] = {}
    unique: list[Item] = []
    for item in sorted(chosen, key=lambda i: i.key):
        first = seen.get(item.title.casefold())
        if first is not None:
            out.append(LeftOut(item.key, f"same title as {first}; give it a different title"))
        else:
            seen[item.title.casefold()] = item.key
            unique.append(item)
    return unique, out


def _reason_left_out(
    item: Item, edition_id: str, published: Collection[str], frozen: Collection[str] | None
) -> str | None:
    """Why `item` stays out of the edition, or None if it goes in.

    The item's own state is asked first: a draft, or an item pinned to another month, stayed
    out for that reason whether or not the send has started. Only an item this edition would
    take today, but that its frozen set lacks, stays out because the send had started.
    """
    if item.status != "ready":
        return f"status is '{item.status}' (write 'status: ready')"
    if item.edition and item.edition != edition_id:
        return f"pinned to edition {item.edition}"
    if item.edition is None and item.key in published:
        return "already published in an edition that was sent"
    if frozen is None or item.key in frozen:
        return None
    if item.edition == edition_id:
        return (
            f"pinned to edition {edition_id}, but not part of it when its send started (new, "
            "or changed since); pin it to a later edition to send it"
        )
    return (
        "not part of this edition when its send started (new, or changed since); "
        "a later edition takes it"
    )


def title_clashes(items: Iterable[Item]) -> list[Problem]:
    """Ready items that would share a title in one edition, found before any build.

    An unpinned item can land in any edition, so it clashes with every ready item of its
    title; two items pinned to different editions never meet.
    """
    ready = sorted((i for i in items if i.status == "ready"), key=lambda i: i.key)
    problems: list[Problem] = []
    for n, item in enumerate(ready):
        for other in ready[:n]:
            same_edition = item.edition is None or other.edition in (None, item.edition)
            if same_edition and item.title.casefold() == other.title.casefold():
                problems.append(
                    Problem(
                        item.key,
                        f"same title as {other.key}; two items in one "
                        "edition need different titles.",
                        "title",
                    )
                )
                break
    return problems


def item_links(item: Item) -> list[str]:
    """The links a partner can click in one item: its body's, then its 'read more' button."""
    return [*_body_links(item.body_html), *([item.link] if item.link else [])]


@functools.lru_cache(maxsize=4096)
def _body_links(body_html: str) -> tuple[str, ...]:
    """Kept by the HTML itself: every build records `clickable`, and a warm process (preview,
    scheduler) would otherwise run the href regex over every item's body again when one item
    changed. A changed body is a new key; an unchanged one is a lookup (its hash is kept on
    the string the parse cache hands back). A tuple, so no caller can change a kept answer."""
    return tuple(u.strip() for u in links_in(body_html) if u.strip())


def clickable(items: Iterable[Item]) -> dict[str, dict[str, Any]]:
    """Each item's title and the links a partner can click in it, by item path. Kept in the
    manifest the ledger stores with the send (outside its hash, which covers the files), so
    the report maps each click to its item as sent without parsing the items again."""
    return {i.key: {"title": i.title, "links": item_links(i)} for i in items}


def build_manifest(
    edition_id: str, items: Iterable[Item], template_sha256: str, config_sha256: str
) -> dict[str, Any]:
    entries = sorted(({"path": i.key, "sha256": i.sha256} for i in items), key=lambda e: e["path"])
    body = {
        "edition": edition_id,
        "items": entries,
        "template_sha256": template_sha256,
        "config_sha256": config_sha256,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**body, "content_sha256": digest}


def assemble(
    config: Config,
    edition_id: str,
    items: Iterable[Item],
    *,
    problems: Iterable[Problem] = (),
    failed: Iterable[str] = (),
    published: Collection[str] = (),
    frozen: Collection[str] | None = None,
    template_sha256: str = "",
) -> Edition:
    """Pure: the same inputs always give the same edition and the same manifest hash."""
    parse_edition_id(edition_id)
    nl = config.model.newsletter
    number = edition_number(edition_id, nl.first_edition)
    chosen, left_out = select_items(items, edition_id, published, frozen)
    errors_by_file: dict[str, str] = {}
    for p in problems:
        if p.severity == "error":
            errors_by_file.setdefault(p.path, str(p).split(": error: ", 1)[-1])
    for key in failed:
        left_out.append(LeftOut(key, f"invalid: {errors_by_file.get(key, 'see newsflash check')}"))
    sections = []
    for s in config.model.sections:
        its = sorted(
            (i for i in chosen if i.section == s.key), key=lambda i: (i.order, i.date, i.title)
        )
        if its:
            sections.append(EditionSection(s.key, s.title, s.intro, tuple(its)))
    settings = config.edition_settings(edition_id)
    manifest = build_manifest(
        edition_id, chosen, template_sha256, config.content_sha256(edition_id)
    )
    manifest["clickable"] = clickable(chosen)
    earlier = tuple(
        build_manifest(edition_id, chosen, template_sha256, h)["content_sha256"]
        for h in config.earlier_content_sha256s(edition_id)
    )
    return Edition(
        id=edition_id,
        number=number,
        title=settings.title or f"{nl.name} – {month_label(edition_id)}",
        month=month_label(edition_id),
        settings=settings,
        sections=tuple(sections),
        left_out=tuple(sorted(left_out, key=lambda lo: lo.key)),
        problems=tuple(problems),
        manifest=manifest,
        earlier_manifest_hashes=earlier,
    )
