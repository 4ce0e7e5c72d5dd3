"""Rendering: what the sample edition's email holds, the checks every build runs, and no network."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import own_template

from newsflash import personalise
from newsflash.config import Config, load_config
from newsflash.errors import BuildError
from newsflash.items import parse_item
from newsflash.pipeline import BuiltEdition, build_edition, write_build
from newsflash.render import RenderedEmail, Renderer
from newsflash.render_engine import to_html
from newsflash.render_inline import Inliner

EDITION = "2022-02"
SAMPLE_TITLES = (
    "The ASA launches the partners’ Newsflash",
    "Working Group 1 holds its first meeting",
    "Battery subgroup presents the first ALBATTS results",
    "The agenda ahead: DRIVES concludes, ALBATTS delivers",
)


class _Links(HTMLParser):
    """Every <a>: its href and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._open: list[Any] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open.append([dict(attrs).get("href") or "", ""])

    def handle_data(self, data: str) -> None:
        for a in self._open:
            a[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            href, text = self._open.pop()
            self.links.append((href, " ".join(text.split())))


def links(html: str) -> list[tuple[str, str]]:
    p = _Links()
    p.feed(html)
    return p.links


@pytest.fixture
def config(workspace: Path) -> Config:
    return load_config(workspace / "config.toml")


@pytest.fixture
def build(config: Config) -> BuiltEdition:
    return build_edition(config, EDITION)


@pytest.fixture
def rendered(build: BuiltEdition) -> RenderedEmail:
    return build.email


@pytest.fixture
def preview(config: Config, build: BuiltEdition) -> EmailMessage:
    out = write_build(config, build)
    msg = email.message_from_bytes((out / "preview.eml").read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def add_item(workspace: Path, name: str, body: str, **fields: str) -> Path:
    meta = {
        "title": "A very long report",
        "section": "alliance",
        "date": "2022-02-10",
        "status": "ready",
        **fields,
    }
    front = "".join(f"{k}: {v}\n" for k, v in meta.items())
    path = workspace / "submissions" / "2022-02" / name
    path.write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
    return path


def edit_template(workspace: Path, partial: str, old: str, new: str) -> None:
    path = own_template(workspace, f"partials/{partial}")
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{partial} no longer holds {old!r}; update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def check(email_: RenderedEmail, name: str) -> tuple[str, str]:
    found = [(c.level, c.message) for c in email_.checks if c.name == name]
    assert len(found) == 1, email_.checks
    return found[0]


def prose(size: int) -> str:
    """About `size` characters of plain paragraphs (nothing for the HTML to escape)."""
    sentence = "The working group discussed skills for the automotive transition in detail. "
    para = sentence * 10
    text = "\n\n".join([para.strip()] * (size // len(para) + 1))
    return text[:size].rstrip()


# --- the HTML --------------------------------------------------------------------------------


def test_html_declares_language_and_color_schemes(rendered: RenderedEmail) -> None:
    assert re.search(r'<html[^>]*\slang="en"', rendered.html)
    assert re.search(r'<meta name="color-scheme" content="light dark"\s*/?>', rendered.html)
    assert re.search(
        r'<meta name="supported-color-schemes" content="light dark"\s*/?>', rendered.html
    )


def test_html_starts_body_with_hidden_preheader(rendered: RenderedEmail) -> None:
    body = rendered.html.split("<body", 1)[1]
    first_text = re.search(
        r"<div class=\"nf-preheader\" style=\"display:none[^\"]*\">([^<]+)</div>", body
    )
    assert first_text, "no hidden preheader div in the body"
    # After it, invisible padding, so clients don't fill the preview with "View in browser".
    assert first_text.group(1).rstrip("\u034f\u200c\u00a0") == rendered.preheader
    assert rendered.preheader.startswith("The first ASA Newsflash")
    assert body.index(rendered.preheader) < body.index(SAMPLE_TITLES[0])


def test_html_keeps_outlook_conditional_tables(rendered: RenderedEmail) -> None:
    assert "<!--[if mso" in rendered.html
    assert re.search(r"<!--\[if mso \| IE\]><table", rendered.html)


def test_html_links_no_web_fonts_or_stylesheets(rendered: RenderedEmail) -> None:
    assert "fonts.googleapis" not in rendered.html
    assert "<link" not in rendered.html
    assert "@import" not in rendered.html


def test_mjml_default_web_font_is_switched_off() -> None:
    # Ubuntu is one of MJML's default fonts: with defaults on, MJML would link Google Fonts.
    source = (
        '<mjml><mj-body><mj-section><mj-column><mj-text font-family="Ubuntu, Helvetica">'
        "Hello</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    html = to_html(source)
    assert "Hello" in html
    assert "fonts.googleapis" not in html


def test_css_is_inlined_into_style_attributes(rendered: RenderedEmail) -> None:
    # The rules of <mj-style> (h3 size, paragraph margins) end up on the elements themselves.
    h3 = re.findall(r"<h3 [^>]*style=\"([^\"]*)\"", rendered.html)
    assert len(h3) == len(SAMPLE_TITLES)
    assert all("font-size:19px" in s for s in h3)
    assert re.search(r"<p style=\"[^\"]*margin:0 0 12px", rendered.html)
    # What stays in <style>: media-dependent rules (which cannot be inlined), Outlook's fix, and
    # MJML's own reset, which MJML keeps in <head>. None of the template's own rules.
    for tag, block in re.findall(r"(<style[^>]*>)(.*?)</style>", rendered.html, re.S):
        kept = (
            "@media" in block
            or "media=" in tag
            or "mj-outlook-group-fix" in block
            or block.lstrip().startswith("#outlook a")
        )
        assert kept, block
    assert rendered.html.count("mso-table-lspace") == 1  # the reset is not copied onto every cell


def test_html_keeps_the_doctype_so_clients_render_in_standards_mode(
    rendered: RenderedEmail,
) -> None:
    assert rendered.html.startswith("<!DOCTYPE html>")


def test_html_shows_every_item_title(rendered: RenderedEmail) -> None:
    for title in SAMPLE_TITLES:
        assert f">{title}</h3>" in rendered.html


# --- the plain-text part ---------------------------------------------------------------------


def test_text_part_has_every_title_and_the_footer_links(rendered: RenderedEmail) -> None:
    text = rendered.text
    for title in SAMPLE_TITLES:
        assert f"## {title}\n" in text
    # A line that would pass 78 characters puts its URL on a line of its own.
    assert "Unsubscribe:\nhttps://newsflash.example.org/unsubscribe/-unsubscribe_token-" in text
    assert "View in browser: https://newsflash.example.org/2022-02/" in text
    assert "<" not in text.replace("<https", "").replace("<mailto", "")  # no stray HTML


def edit_config(workspace: Path, old: str, new: str) -> Config:
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text, f"config.toml no longer holds {old!r}; update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return load_config(path)


def test_editorial_and_closing_markdown_is_plain_text_in_the_text_part(workspace: Path) -> None:
    """Regression (issue 13): `**second**` appeared literally in email.txt."""
    config = edit_config(
        workspace,
        'closing = "In the meantime,',
        'editorial = "The **second** step: see [the plan](https://example.org/plan).\\n\\n'
        '- one\\n- two"\nclosing = "In the *meantime*,',
    )

    text = build_edition(config, EDITION).email.text

    assert "The second step: see the plan <https://example.org/plan>.\n\n- one\n- two" in text
    assert "In the meantime, the ASA" in text
    assert "**" not in text and "[the plan]" not in text and "*meantime*" not in text


def test_long_call_to_action_and_footer_lines_wrap_like_the_body(workspace: Path) -> None:
    long = "the alliance of the automotive ecosystem for skills, training and the workforce"
    edit_config(workspace, 'joining the ASA?"', f'joining the ASA, {long}?"')
    edit_config(workspace, 'link_text = "Find out how here"', f'link_text = "Read how, {long}"')
    config = edit_config(workspace, 'of the Automotive Skills Alliance."', f', {long}."')

    text = build_edition(config, EDITION).email.text

    wide = [line for line in text.splitlines() if len(line) > 76 and "://" not in line]
    assert wide == []
    assert "\nhttps://automotive-skills-alliance.eu/join-us/\n" in text  # the URL whole
    assert "ecosystem for skills, training and the workforce?" in text


# --- substitution tags: rendered once per edition, filled per recipient ----------------------


def test_first_name_tags_appear_once_each_in_their_part(rendered: RenderedEmail) -> None:
    assert rendered.html.count(personalise.FIRST_NAME_HTML) == 1
    assert personalise.FIRST_NAME not in rendered.html
    assert rendered.text.count(personalise.FIRST_NAME) == 1
    assert personalise.FIRST_NAME_HTML not in rendered.text


def test_the_token_tag_sits_inside_the_unsubscribe_url(rendered: RenderedEmail) -> None:
    """The sample runs `newsflash serve`: the link carries each partner's signed token, never
    the recipient id, which anyone who knows an address can compute."""
    assert rendered.html.count(personalise.TOKEN) == 1
    assert personalise.RECIPIENT_ID not in rendered.html
    unsubscribe = [href for href, text in links(rendered.html) if text == "Unsubscribe"]
    assert unsubscribe == ["https://newsflash.example.org/unsubscribe/-unsubscribe_token-"]
    assert rendered.text.count(personalise.TOKEN) == 1


def test_render_is_the_same_for_every_recipient(config: Config, build: BuiltEdition) -> None:
    again = Renderer(config).render(build.edition)
    assert (again.html, again.text) == (build.email.html, build.email.text)


# --- preview.eml -----------------------------------------------------------------------------


def test_preview_is_multipart_alternative_text_first(preview: EmailMessage) -> None:
    assert preview.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in preview.iter_parts()]
    assert parts == ["text/plain", "text/html"]


def test_preview_is_personalised_for_the_sample_partner(preview: EmailMessage) -> None:
    plain = preview.get_body(("plain",))
    html = preview.get_body(("html",))
    assert plain is not None and html is not None
    plain_text, html_text = plain.get_content(), html.get_content()
    assert "Dear Alex," in plain_text
    assert "Dear Alex," in html_text
    for tag in (personalise.FIRST_NAME, personalise.FIRST_NAME_HTML, personalise.TOKEN):
        assert tag not in plain_text and tag not in html_text
    assert "unsubscribe/0000000000000000.sample" in html_text
    assert str(preview["To"]) == "Alex <partner@example.org>"


def test_preview_has_one_click_unsubscribe_headers(preview: EmailMessage) -> None:
    value = str(preview["List-Unsubscribe"])
    assert "<https://newsflash.example.org/unsubscribe/0000000000000000.sample>" in value
    assert "<mailto:unsubscribe@example.org?subject=unsubscribe-0000000000000000.sample>" in value
    assert str(preview["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert preview["Subject"].startswith("ASA Newsflash No. 1 – ")


# --- size checks -----------------------------------------------------------------------------


def add_long_items(workspace: Path, total: int) -> None:
    """Items too large for Gmail together, none alone (an item too large alone is left out)."""
    for n in range(5):
        add_item(workspace, f"long{n}.md", prose(total // 5), title=f"A very long report {n}")


def test_items_too_large_together_fail_the_size_check_and_are_not_written(
    workspace: Path, config: Config
) -> None:
    add_long_items(workspace, 110 * 1024)
    build = build_edition(config, EDITION)
    level, message = check(build.email, "size")
    assert level == "error"
    assert "Gmail clips" in message and "--allow-clip" in message
    assert not build.email.ok
    with pytest.raises(BuildError, match="Gmail clips"):
        write_build(config, build)
    assert not (workspace / "build" / EDITION / "email.html").exists()


def test_items_too_large_together_are_written_when_clipping_is_allowed(
    workspace: Path, config: Config
) -> None:
    add_long_items(workspace, 110 * 1024)
    build = build_edition(config, EDITION)
    out = write_build(config, build, allow_clip=True)
    assert (out / "email.html").stat().st_size > 102 * 1024


def test_html_of_92_kb_gives_a_size_warning(workspace: Path, config: Config) -> None:
    path = add_item(workspace, "long.md", "x")
    base = build_edition(config, EDITION).email.size
    add_item(workspace, path.name, prose(92 * 1024 - base))
    email_ = build_edition(config, EDITION).email
    assert 90 * 1024 < email_.size <= 102 * 1024
    level, message = check(email_, "size")
    assert level == "warning", message
    assert "near Gmail" in message
    assert email_.ok


def test_sample_passes_every_check(rendered: RenderedEmail) -> None:
    assert {c.name: c.level for c in rendered.checks} == {"size": "ok", "links": "ok", "alt": "ok"}


# --- link and image checks -------------------------------------------------------------------


def test_relative_link_in_template_fails_the_links_check(workspace: Path, config: Config) -> None:
    edit_template(
        workspace,
        "footer.mjml.j2",
        "{{ newsletter.why }}</p>",
        '{{ newsletter.why }} <a href="/about/">About</a></p>',
    )
    build = build_edition(config, EDITION)
    level, message = check(build.email, "links")
    assert level == "error"
    assert "'/about/'" in message
    with pytest.raises(BuildError, match="/about/"):
        write_build(config, build, allow_clip=True)


def test_image_item_without_alt_is_refused(config: Config) -> None:
    text = (
        b"---\ntitle: A photo\nsection: alliance\ndate: 2022-02-01\n"
        b"image: https://example.org/photo.jpg\n---\nText.\n"
    )
    item, problems = parse_item(text, "photo.md", config.section_keys)
    assert item is None
    assert [p.field for p in problems if p.severity == "error"] == ["image_alt"]


def test_image_item_with_alt_renders_alt_text(workspace: Path, config: Config) -> None:
    add_item(
        workspace,
        "photo.md",
        "Text.",
        title="A photo",
        image="https://example.org/p.jpg",
        image_alt="Partners at the WG1 meeting",
    )
    email_ = build_edition(config, EDITION).email
    assert re.search(r'<img [^>]*alt="Partners at the WG1 meeting"', email_.html)
    assert check(email_, "alt")[0] == "ok"


def test_template_img_without_alt_fails_the_alt_check(workspace: Path, config: Config) -> None:
    edit_template(
        workspace,
        "footer.mjml.j2",
        "{{ newsletter.why }}</p>",
        '{{ newsletter.why }}</p><img src="https://example.org/logo.png" width="80">',
    )
    build = build_edition(config, EDITION)
    level, message = check(build.email, "alt")
    assert level == "error"
    assert "https://example.org/logo.png" in message
    with pytest.raises(BuildError, match="alt"):
        write_build(config, build)


# --- offline ---------------------------------------------------------------------------------


def test_render_makes_no_network_lookup_or_connection(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []
    guarded_connect = socket.socket.connect  # conftest's guard: loopback only

    def lookup(*args: Any, **kwargs: Any) -> Any:
        attempts.append(("getaddrinfo", args[:2]))
        raise OSError("name lookups are refused in this test")

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(("connect", address))
        guarded_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket.socket, "connect", connect)
    build = build_edition(config, EDITION, renderer=Renderer(config))  # a cold renderer
    write_build(config, build)
    assert build.email.ok
    assert attempts == []


STYLED = """<mjml><mj-head><mj-style>
.nf-x {{ color: {colour} }} .nf-float {{ float: left }}
@media (max-width: 480px) {{ .nf-x {{ color: {small} }} }}
</mj-style></mj-head><mj-body><mj-section><mj-column>
<mj-text css-class="nf-x">Hello</mj-text>
<mj-raw><img src="https://example.org/a.png" alt="A" style="float:right">
<img class="nf-float" src="https://example.org/b.png" alt="B"></mj-raw>
</mj-column></mj-section></mj-body></mjml>"""


def test_the_inliner_writes_the_same_html_when_its_style_blocks_come_from_its_cache() -> None:
    """premailer's work on each <style> block is kept between renders (render_engine): the
    second render, from that cache, must be the golden email byte for byte, as the first."""
    golden = Path(__file__).parent / "golden" / EDITION
    Inliner.blocks.clear()
    first = to_html((golden / "email.mjml").read_text(encoding="utf-8"))
    again = to_html((golden / "email.mjml").read_text(encoding="utf-8"))
    assert first == again == (golden / "email.html").read_text(encoding="utf-8")


def test_a_changed_style_block_is_inlined_anew_not_taken_from_the_cache() -> None:
    first = to_html(STYLED.format(colour="#ab0012", small="#12ab00"))
    second = to_html(STYLED.format(colour="#0012ab", small="#00ab12"))
    assert "#ab0012" in first and "#12ab00" in first
    assert "#0012ab" in second and "#00ab12" in second
    assert "#ab0012" not in second and "#12ab00" not in second


def test_an_image_a_template_floats_still_gets_the_align_outlook_reads() -> None:
    """The inliner skips premailer's float check where no image can float; one that does,
    by its own style or by a class, still gets align=."""
    html = to_html(STYLED.format(colour="#ab0012", small="#12ab00"))
    images = re.findall(r"<img[^>]*>", html)
    assert 'align="right"' in images[0] and 'align="left"' in images[1]
    plain = to_html(STYLED.replace("float:right", "").replace("float: left", "color: red"))
    assert "align=" not in " ".join(re.findall(r"<img[^>]*>", plain))
