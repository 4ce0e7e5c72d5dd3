"""Issue 14's defects, each pinned: contents targets, preheader, pixel widths, link names, the
closing block, the size, the plain-text part, the headers, and the logo and picture settings."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import re
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from newsflash.config import load_config
from newsflash.errors import ConfigError
from newsflash.message import message_from, to_mime
from newsflash.pipeline import SAMPLE_PERSON, build_edition

EDITION = "2022-02"
MAX_SAMPLE_BYTES = 40 * 1024
URL = re.compile(r"^\s*(https?://|mailto:)\S+$")


class _Tags(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags(html: str, name: str) -> list[dict[str, str]]:
    p = _Tags()
    p.feed(html)
    return [a for t, a in p.tags if t == name]


def edit_config(workspace: Path, old: str, new: str) -> None:
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_item(workspace: Path, name: str, body: str, **fields: str) -> None:
    meta = {"section": "alliance", "date": "2022-02-10", "status": "ready", **fields}
    front = "".join(f"{k}: {v}\n" for k, v in meta.items())
    (workspace / "submissions" / EDITION / name).write_text(
        f"---\n{front}---\n{body}\n", encoding="utf-8"
    )


def html_of(workspace: Path) -> str:
    return build_edition(load_config(workspace / "config.toml"), EDITION).email.html


def eml_of(workspace: Path) -> EmailMessage:
    config = load_config(workspace / "config.toml")
    raw = to_mime(message_from(config, build_edition(config, EDITION).email), SAMPLE_PERSON)
    msg = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


# --- the HTML --------------------------------------------------------------------------------


def test_every_contents_link_lands_on_an_a_name_target(workspace: Path) -> None:
    """Gmail webmail, Outlook for Windows and Yahoo drop `id`: the target must be <a name>."""
    html = html_of(workspace)
    targets = {a["href"][1:] for a in tags(html, "a") if a.get("href", "").startswith("#")}
    named = {a["name"] for a in tags(html, "a") if "name" in a}
    assert len(targets) == 4
    assert targets <= named
    assert all(a.get("id") == a["name"] for a in tags(html, "a") if "name" in a)


def test_the_preheader_is_hidden_without_a_text_colour(workspace: Path) -> None:
    """SpamAssassin's HTML_FONT_LOW_CONTRAST scored MJML's white hidden preheader."""
    [pre] = [d for d in tags(html_of(workspace), "div") if d.get("class") == "nf-preheader"]
    style = pre["style"].replace(" ", "")
    assert "display:none" in style and "mso-hide:all" in style
    assert "color" not in style


def test_every_image_keeps_a_pixel_width_for_outlook(workspace: Path) -> None:
    add_item(
        workspace,
        "photo.md",
        "A large photo.",
        title="A photo",
        image="https://example.org/photo-4000px.jpg",
        image_alt="A workshop",
    )
    widths = {i["src"]: i.get("width") for i in tags(html_of(workspace), "img")}
    assert widths == {
        "https://newsflash.example.org/img/sample-logo.png": "240",
        "https://newsflash.example.org/img/sample-2022-02.jpg": "536",
        "https://example.org/photo-4000px.jpg": "536",
    }


def test_an_item_link_names_its_item_in_its_own_words(workspace: Path) -> None:
    """mjml-python drops mj-button's title: the link text itself must carry the title."""
    add_item(
        workspace,
        "more.md",
        "Text.",
        title="Skills pact signed",
        link="https://example.org/pact",
        link_text="Read more",
    )
    html = html_of(workspace)
    m = re.search(r'<a href="https://example.org/pact"[^>]*>(.*?)</a>', html, re.S)
    assert m, "no link to the item"
    words = re.sub(r"<[^>]+>", "", m.group(1))
    assert "Read more" in words and "Skills pact signed" in words
    assert not [a for a in tags(html, "a") if "title" in a]


def test_the_closing_and_call_to_action_stand_in_their_own_block(workspace: Path) -> None:
    html = html_of(workspace)
    close = html.index('class="nf-close"')
    assert html.index("Find out how here") > close
    assert html.index("In the meantime, the ASA will continue") > close
    assert html.index("The agenda ahead: DRIVES concludes") < close  # the last item is before


def test_without_a_logo_the_masthead_is_the_name_alone(workspace: Path) -> None:
    edit_config(workspace, "logo = {", "# logo = {")
    html = html_of(workspace)
    assert "sample-logo.png" not in html
    assert ">ASA Newsflash</p>" in html


def test_the_sample_email_stays_under_40_kb(workspace: Path) -> None:
    assert len(html_of(workspace).encode()) < MAX_SAMPLE_BYTES


# --- the plain-text part ----------------------------------------------------------------------

LONG = {
    "title": "A title of well over seventy-eight characters that a plain-text client must not "
    "show on one line",
    "organisation": "The European Association of Regional Automotive Training Providers and "
    "Vocational Schools",
    "author": "Dr Maria-Alexandra Papadopoulou-Vandenberghe, coordinator",
    "link": "https://example.org/a/very/long/path/to/the/final/report/of/the/working/group/2022",
    "link_text": "Download the full report of the working group on skills intelligence now",
}


def test_no_text_line_passes_78_characters_except_a_bare_url(workspace: Path) -> None:
    add_item(workspace, "long.md", "Body " * 60, **{k: f'"{v}"' for k, v in LONG.items()})
    edit_config(
        workspace,
        'postal_address = "Avenue des Nerviens 85, 1040 Brussels, Belgium"',
        'postal_address = "Avenue des Nerviens 85, Building B, third floor, 1040 Brussels '
        '(Etterbeek), Belgium"',
    )
    text = eml_of(workspace).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert LONG["link"] in text  # the long URL stays whole
    long_lines = [ln for ln in text.splitlines() if len(ln) > 78 and not URL.match(ln)]
    assert long_lines == []


def test_the_signature_separator_is_dash_dash_space(workspace: Path) -> None:
    text = eml_of(workspace).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    lines = text.splitlines()
    assert lines.count("-- ") == 1
    assert "--" not in lines
    assert lines[lines.index("-- ") + 1].startswith("ASA Newsflash is sent by")


# --- the headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "instant", "offset"),
    [
        ("Europe/Brussels", dt.datetime(2026, 1, 6, 8, 0, tzinfo=dt.UTC), "+0100"),
        ("Europe/Brussels", dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.UTC), "+0200"),
        ("America/New_York", dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.UTC), "-0400"),
        ("Asia/Kolkata", dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.UTC), "+0530"),
    ],
)
def test_the_date_header_carries_the_newsletters_zone_offset(
    workspace: Path, zone: str, instant: dt.datetime, offset: str
) -> None:
    edit_config(workspace, 'timezone = "Europe/Brussels"', f'timezone = "{zone}"')
    with time_machine.travel(instant, tick=False):
        date = str(eml_of(workspace)["Date"])
    assert date.endswith(offset), date
    parsed = email.utils.parsedate_to_datetime(date)
    assert parsed == instant
    assert parsed.utcoffset() == instant.astimezone(ZoneInfo(zone)).utcoffset()


def test_the_list_id_names_the_newsletter_at_the_senders_domain(workspace: Path) -> None:
    assert str(eml_of(workspace)["List-Id"]) == "ASA Newsflash <asa-newsflash.example.org>"


def test_a_hostile_newsletter_name_still_gives_a_valid_list_id(workspace: Path) -> None:
    edit_config(workspace, 'name = "ASA Newsflash"', 'name = "Ålliance \\"News\\", <Monthly>"')
    header = str(eml_of(workspace)["List-Id"])
    name, list_id = email.utils.parseaddr(header)
    assert name == "Alliance News, Monthly"
    assert list_id == "alliance-news-monthly.example.org"


def test_the_message_has_one_mime_version_only(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    raw = to_mime(message_from(config, build_edition(config, EDITION).email), SAMPLE_PERSON)
    assert raw.as_bytes().count(b"MIME-Version:") == 1


# --- the settings -----------------------------------------------------------------------------

BAD_LOGOS: dict[str, tuple[str, str]] = {
    "http, not https": (
        'url = "http://x.org/l.png", alt = "A", width = 200',
        "newsletter.logo.url",
    ),
    "no alt text": ('url = "https://x.org/l.png", alt = "", width = 200', "newsletter.logo.alt"),
    "alt missing": ('url = "https://x.org/l.png", width = 200', "newsletter.logo.alt"),
    "wider than the column": (
        'url = "https://x.org/l.png", alt = "A", width = 900',
        "newsletter.logo.width",
    ),
    "width as text": (
        'url = "https://x.org/l.png", alt = "A", width = "200"',
        "newsletter.logo.width",
    ),
    "misspelt key": (
        'url = "https://x.org/l.png", alt = "A", width = 200, widht = 1',
        "newsletter.logo.widht",
    ),
}


@pytest.mark.parametrize("case", BAD_LOGOS, ids=BAD_LOGOS)
def test_a_bad_logo_setting_is_refused_naming_the_key(workspace: Path, case: str) -> None:
    value, key = BAD_LOGOS[case]
    text = (workspace / "config.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^logo = \{.*\}$", "logo = { " + value + " }", text)
    (workspace / "config.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        load_config(workspace / "config.toml")


BAD_PICTURES: dict[str, tuple[str, str]] = {
    "http picture": ('image = "http://x.org/p.jpg"', "image"),
    "picture without alt": ('image = "https://x.org/p.jpg"\nimage_alt = ""', "image_alt"),
    "not an address": ('image = "cover.jpg"', "image"),
}


@pytest.mark.parametrize("case", BAD_PICTURES, ids=BAD_PICTURES)
def test_a_bad_edition_picture_is_refused_naming_what_to_write(workspace: Path, case: str) -> None:
    value, word = BAD_PICTURES[case]
    text = (workspace / "config.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^image = "[^\n]*\nimage_alt = "[^\n]*$', value, text)
    (workspace / "config.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(workspace / "config.toml")
    message = str(e.value)
    assert 'editions."2022-02"' in message and word in message, message


# --- in a browser: dark mode and images off ---------------------------------------------------

NON_TEXT_JS = """
() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && !c.endsWith(', 0)') && c !== 'transparent') return rgb(c);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const p of document.querySelectorAll('.nf-rule p'))
    out.push(['divider', rgb(getComputedStyle(p).borderTopColor), bg(p.parentElement)]);
  for (const b of document.querySelectorAll('.nf-box'))
    out.push(['contents bar', rgb(getComputedStyle(b).borderLeftColor), bg(b.parentElement)]);
  for (const t of document.querySelectorAll('.nf-button td[bgcolor], .nf-button td'))
    if (getComputedStyle(t).backgroundColor !== 'rgba(0, 0, 0, 0)')
      out.push(['button', rgb(getComputedStyle(t).backgroundColor), bg(t.closest('.nf-close'))]);
  for (const i of document.querySelectorAll('.nf-logo img'))
    out.push(['logo alt text', rgb(getComputedStyle(i).color), bg(i.parentElement)]);
  return out;
}
"""


def _contrast(a: list[float], b: list[float]) -> float:
    def lum(rgb: list[float]) -> float:
        c = [x / 255 for x in rgb]
        c = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dividers_bars_buttons_and_logo_text_keep_3_to_1_with_images_off(
    browser: Any, workspace: Path, scheme: str, tmp_path: Path
) -> None:
    page_file = tmp_path / "email.html"
    page_file.write_text(html_of(workspace), encoding="utf-8")
    context = browser.new_context(viewport={"width": 600, "height": 800}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
        )
        page.goto(page_file.as_uri())
        found = page.evaluate(NON_TEXT_JS)
    finally:
        context.close()
    kinds = {k for k, _, _ in found}
    assert kinds == {"divider", "contents bar", "button", "logo alt text"}, found
    poor = [(k, fg, bg) for k, fg, bg in found if _contrast(fg, bg) < 3.0]
    assert poor == [], poor
