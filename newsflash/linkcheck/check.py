"""The check itself: fetch an edition's links (working ones from the cache when recent),
read the last check's dead links without fetching, and say them in a notice."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from newsflash.config import Config
from newsflash.items import Item
from newsflash.linkcheck.cache import FILE as CACHE_FILE
from newsflash.linkcheck.cache import LinkCache
from newsflash.linkcheck.fetch import fetch_all
from newsflash.linkcheck.found import links_of_items
from newsflash.linkcheck.result import DeadLink, LinkReport

__all__ = ["check_links", "dead_links_text", "known_dead"]


def check_links(
    config: Config, items: Sequence[Item], clock: Callable[[], float] = time.time
) -> LinkReport:
    """Fetch every web link of `items` once (working ones from the cache when recent)."""
    links = links_of_items(items, config.submissions_dir)
    settings = config.model.links
    urls = list(dict.fromkeys(link.url for link in links))
    cache = LinkCache(config.state_dir)
    try:
        now = clock()
        known = cache.fresh(urls, now, settings.cache_hours * 3600)
        fetched = fetch_all(
            [u for u in urls if u not in known],
            timeout=settings.timeout,
            concurrency=settings.concurrency,
        )
        cache.store(fetched.values(), clock())
    finally:
        cache.close()
    results = {**known, **fetched}
    dead = tuple(DeadLink(link, results[link.url]) for link in links if not results[link.url].ok)
    return LinkReport(tuple(links), len(fetched), len(known), dead)


def known_dead(config: Config, items: Sequence[Item]) -> list[DeadLink]:
    """Links of `items` that the last check found dead; nothing is fetched (for the send)."""
    if not (config.state_dir / CACHE_FILE).exists():
        return []
    links = links_of_items(items, config.submissions_dir)
    cache = LinkCache(config.state_dir)
    try:
        last = cache.last(list(dict.fromkeys(link.url for link in links)))
    finally:
        cache.close()
    return [
        DeadLink(link, last[link.url][0])
        for link in links
        if link.url in last and not last[link.url][0].ok
    ]


def dead_links_text(edition_name: str, dead: Sequence[DeadLink], *, for_contact: bool) -> str:
    """A notice listing dead links, each with its file, line and what it answered."""
    opening = (
        f"Some links of your item(s) in {edition_name} do not work today:"
        if for_contact
        else f"The link check of {edition_name} found {len(dead)} dead link(s):"
    )
    lines = [opening, ""]
    for d in dead:
        lines += [
            f"- {d.link.url}",
            f"  in '{d.link.item_title}' ({d.link.where}): {d.result.reason}",
        ]
    lines += [
        "",
        "Please correct the link in the file (or tell the secretariat). The send goes ahead "
        "regardless: a site may be down for a minute. Check again with "
        "`newsflash check --links`.",
    ]
    return "\n".join(lines) + "\n"
