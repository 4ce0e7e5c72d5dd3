"""The built sample email in headless Chromium: a phone, a desktop column, and dark mode.

Screenshots are kept in tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from newsflash import personalise
from newsflash.config import load_config
from newsflash.pipeline import SAMPLE_PERSON, build_edition, write_build

pytestmark = pytest.mark.browser

EDITION = "2022-02"
ARTIFACTS = (
    Path(__file__).resolve().parent / "artifacts"
)  # git-ignored; the browser fixture creates it
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
MIN_FONT_PX = 14.0

# Every element with its own visible text: the text, font size and weight, colour, and the
# first non-transparent background colour found walking up from it.
TEXT_ELEMENTS_JS = """
(defaultBackground) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (el) => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) return {rgb: c, from: e.tagName + (e.className ? '.' + e.className : '')};
    }
    return {rgb: defaultBackground, from: 'page default'};
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (!text || !el || seen.has(el)) continue;
    const s = getComputedStyle(el);
    if (s.visibility !== 'visible' || parseFloat(s.opacity) === 0) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const r = range.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    seen.add(el);
    const bg = background(el);
    out.push({text: text.slice(0, 60), tag: el.tagName, fontSize: parseFloat(s.fontSize),
              fontWeight: parseInt(s.fontWeight, 10), color: parse(s.color), background: bg.rgb,
              backgroundFrom: bg.from});
  }
  return out;
}
"""


def luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: list[float], bg: list[float]) -> float:
    # Blend a translucent text colour over its background before comparing.
    alpha = fg[3] if len(fg) > 3 else 1.0
    blended = [fg[i] * alpha + bg[i] * (1 - alpha) for i in range(3)]
    hi, lo = sorted((luminance(blended), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def required_contrast(el: dict[str, Any]) -> float:
    """WCAG AA: 4.5:1, or 3:1 for large text (24px, or bold from 18.66px)."""
    large = el["fontSize"] >= 24 or (el["fontWeight"] >= 700 and el["fontSize"] >= 18.66)
    return 3.0 if large else 4.5


@pytest.fixture
def built(workspace: Path) -> tuple[Path, list[str]]:
    """The sample's built email.html with its tags filled for the sample partner (as in
    preview.eml, so the screenshots say "Dear Alex"), and the edition's item titles."""
    config = load_config(workspace / "config.toml")
    build = build_edition(config, EDITION)
    out = write_build(config, build)
    html = (out / "email.html").read_text(encoding="utf-8")
    subs = personalise.substitutions(SAMPLE_PERSON, config.model.newsletter.greeting_fallback)
    page = out.parent / "email-alex.html"
    page.write_text(personalise.apply(html, subs), encoding="utf-8")
    return page, [i.title for i in build.edition.items]


@pytest.fixture
def open_email(browser: Any, built: tuple[Path, list[str]]) -> Iterator[Any]:
    """Open the email at a width and colour scheme; no request may leave the machine."""
    contexts: list[Any] = []
    blocked: list[str] = []

    def route(r: Any) -> None:
        url = urlsplit(r.request.url)
        if url.scheme in ("file", "data", "about") or url.hostname in LOOPBACK:
            r.continue_()
        else:  # the email's own images are remote by design: shown here as images off
            if r.request.resource_type != "image":
                blocked.append(r.request.url)
            r.abort()

    def open_(width: int, scheme: str = "light") -> Any:
        context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
        contexts.append(context)
        page = context.new_page()
        page.route("**/*", route)
        page.goto(built[0].as_uri())
        page.wait_for_load_state("load")
        return page

    yield open_
    for c in contexts:
        c.close()
    assert blocked == [], f"the email tried to load remote resources: {blocked}"


@pytest.mark.parametrize("width", [375, 600])
def test_every_item_title_is_visible_without_sideways_scrolling(
    open_email: Any, built: tuple[Path, list[str]], width: int
) -> None:
    page = open_email(width)
    assert page.get_by_text("Dear Alex,").is_visible()
    titles = built[1]
    assert len(titles) == 4
    for title in titles:
        heading = page.locator("h3", has_text=title)
        assert heading.count() == 1, title
        assert heading.is_visible(), f"{title!r} is not visible at {width}px"
        box = heading.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (title, box)
    assert page.evaluate("document.compatMode") == "CSS1Compat"  # standards mode, not quirks
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"horizontal overflow at {width}px: scrollWidth {scroll_width}"
    page.screenshot(path=str(ARTIFACTS / f"email-{width}.png"), full_page=True)


def test_no_visible_text_is_smaller_than_14px_on_a_phone(open_email: Any) -> None:
    page = open_email(375)
    elements = page.evaluate(TEXT_ELEMENTS_JS, [255, 255, 255, 1])
    assert len(elements) > 30  # the whole email was measured, not an empty page
    small = [(e["tag"], e["fontSize"], e["text"]) for e in elements if e["fontSize"] < MIN_FONT_PX]
    assert small == [], f"text below {MIN_FONT_PX}px at 375px: {small}"


def test_dark_mode_text_keeps_enough_contrast(open_email: Any) -> None:
    page = open_email(375, "dark")
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    elements = page.evaluate(TEXT_ELEMENTS_JS, [18, 18, 18, 1])
    page.screenshot(path=str(ARTIFACTS / "email-375-dark.png"), full_page=True)
    assert len(elements) > 30
    # The dark rules are in effect: the page is dark, not the light design.
    body_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert luminance([float(x) for x in body_bg[4:-1].split(",")[:3]]) < 0.05, body_bg
    poor = []
    for e in elements:
        ratio = contrast(e["color"], e["background"])
        if ratio < required_contrast(e):
            poor.append(
                f"{e['tag']} {e['text']!r}: {ratio:.2f}:1 (color {e['color']} on "
                f"{e['background']} from {e['backgroundFrom']})"
            )
    assert poor == [], "text with too little contrast in dark mode:\n" + "\n".join(poor)


def test_light_mode_text_keeps_enough_contrast(open_email: Any) -> None:
    page = open_email(600)
    elements = page.evaluate(TEXT_ELEMENTS_JS, [255, 255, 255, 1])
    poor = [
        (e["tag"], e["text"], round(contrast(e["color"], e["background"]), 2))
        for e in elements
        if contrast(e["color"], e["background"]) < required_contrast(e)
    ]
    assert poor == [], f"text with too little contrast in light mode: {poor}"
