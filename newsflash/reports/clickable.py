"""Which item each link of a sent edition came from, and each item's title, for the report.

The send records both with the manifest the ledger keeps (`edition.clickable`), so the report
reads them from the ledger: parsing the item files again meant importing the Markdown parser
and the HTML sanitiser, a tenth of a big report's time, and gave the files as they are now
rather than as partners got them. A send by an older newsflash recorded none; its items are
parsed from the files as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsflash.config import Config

__all__ = ["ItemMaps", "item_maps"]

#: url -> item key, item key -> title, and the notes reading them left.
ItemMaps = tuple[dict[str, str], dict[str, str], list[str]]


def item_maps(config: Config, manifest: dict[str, Any], keys: Sequence[str]) -> ItemMaps:
    """url -> item key and item key -> title for the items the send froze; the first item
    (by path) that has a link owns it. As the send recorded them with its manifest; from the
    item files as they are now for a send that recorded none (an older newsflash's)."""
    recorded = _recorded(manifest.get("clickable"), keys)
    if recorded is None:
        return _parsed(config, keys)
    links: dict[str, str] = {}
    for key in keys:
        for url in recorded[key][1]:
            links.setdefault(url, key)
    return links, {key: recorded[key][0] for key in keys}, []


def _recorded(clickable: object, keys: Sequence[str]) -> dict[str, tuple[str, list[str]]] | None:
    """Each item's (title, links) as the send recorded them; None unless every item has a
    well-formed entry (then the item files decide, as before)."""
    if not isinstance(clickable, dict):
        return None
    found: dict[str, tuple[str, list[str]]] = {}
    for key in keys:
        entry = clickable.get(key)
        if not isinstance(entry, dict):
            return None
        title, links = entry.get("title"), entry.get("links")
        if not isinstance(title, str) or not isinstance(links, list):
            return None
        if not all(isinstance(url, str) for url in links):
            return None
        found[key] = (title, links)
    return found


def _parsed(config: Config, keys: Sequence[str]) -> ItemMaps:
    """What `_items` gives, from the item files: an item file gone since the send is a note,
    and its clicks then count under "not an item's link"."""
    from newsflash.edition import item_links  # deferred: the item parser, for an older send
    from newsflash.items import load_items  # deferred: the item parser, for an older send

    loaded = {i.key: i for i in load_items(config.submissions_dir, config.section_keys).items}
    links: dict[str, str] = {}
    titles: dict[str, str] = {}
    missing = []
    for key in keys:
        item = loaded.get(key)
        if item is None:
            missing.append(key)
            titles[key] = key
            continue
        titles[key] = item.title
        for url in item_links(item):
            links.setdefault(url, key)
    notes = (
        [f"item file(s) gone from submissions since the send: {', '.join(missing)}"]
        if missing
        else []
    )
    return links, titles, notes
