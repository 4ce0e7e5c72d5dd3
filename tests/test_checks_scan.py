"""The link and alt checks read each plain <a>/<img> tag once (checks._scan_tags): what they
find must be what reading all the tags together finds, for any tag soup, however hostile."""

from __future__ import annotations

import random

import pytest

from newsflash import checks

HOSTILE = [
    '<a href="https://example.org/a">',
    "<a href='https://example.org/single'>",
    '<a title="x>',  # the finder cuts a tag at its first '>', inside the quotes
    '<a title="it\'s" href="https://example.org/q">',
    "<a href=https://example.org/unquoted>",
    '<A HREF="https://example.org/upper">',
    '<a href="https://example.org/?a=1&amp;b=2">',
    '<a href="x" href="https://example.org/twice">',
    '<a\nhref="https://example.org/newline">',
    '<img src="https://example.org/i.png"/>',
    '<img src="https://example.org/j.png" alt>',
    '<img src="https://example.org/k.png" alt="">',
    '<img alt="a &gt; b" src="https://example.org/l.png">',
    '<a x"="y>',
    "<a '>",
    '<img src="https://example.org/m.png" alt="M" / >',
    '<a href="javascript:alert(1)">',
    '<a href="#item-1">',
    "<a>",
    '<img src=" https://example.org/space.png " alt=" ">',
]


def _together(html: str) -> tuple[list[str], list[tuple[str, str | None]]]:
    """The reference: every tag read in one pass, as the checks did before."""
    scan = checks._Scan()
    scan.feed("".join(checks._LINK_OR_IMAGE.findall(html)))
    return scan.links, scan.images


@pytest.mark.parametrize("tag", HOSTILE)
def test_each_hostile_tag_among_plain_ones_is_read_as_all_the_tags_together(tag: str) -> None:
    html = f'<p><a href="https://example.org/before">x</a>{tag}y<img src="z.png" alt="z"></p>'
    tags = checks._LINK_OR_IMAGE.findall(html)
    assert checks._scan_tags(tags) == _together(html)


@pytest.mark.parametrize("seed", range(40))
def test_random_tag_soup_gives_the_same_links_and_images_as_one_pass(seed: int) -> None:
    rng = random.Random(seed)
    html = "".join(rng.choice([*HOSTILE, "text", "</a>", "<p>", "&amp;"]) for _ in range(30))
    tags = checks._LINK_OR_IMAGE.findall(html)
    assert checks._scan_tags(tags) == _together(html)
    again = checks.run_checks(html, warn_kb=80, limit_kb=100)  # from the per-tag cache now
    assert again == checks.run_checks(html, warn_kb=80, limit_kb=100)


def test_a_plain_tag_is_read_once_and_then_answered_from_the_cache() -> None:
    checks._tag_alone.cache_clear()
    html = '<a href="https://example.org/once">a</a>' * 3
    checks.run_checks(html, warn_kb=80, limit_kb=100)
    info = checks._tag_alone.cache_info()
    assert (info.misses, info.hits) == (1, 2)
