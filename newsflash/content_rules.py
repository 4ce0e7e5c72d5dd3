"""The rules for contributor text that need no Markdown reader: which links an email may
carry, the links in finished HTML, and the characters no email can carry.

Apart from content.py so that what only judges finished items (the edition's manifest, the
build's checks, the item field checks) imports neither markdown-it nor nh3; content.py's
rendering applies the same rules.
"""

from __future__ import annotations

import html
import re

_BAD_SCHEME = re.compile(r"^\s*(javascript|data|vbscript|file)\s*:", re.IGNORECASE)
_IGNORED_IN_URL = re.compile(r"[\t\n\r\x00]")  # browsers drop these anywhere in a URL
_ABSOLUTE_LINK = re.compile(r"https?://[^\s/]+\.\S+|mailto:[^\s@]+@\S+", re.IGNORECASE)
_HREF = re.compile(r"<a\b[^>]*?\shref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.IGNORECASE)
# Characters MJML's XML parser refuses (it stops the whole edition) and no reader can see:
# C0 controls but tab and newline, DEL, U+FFFE/U+FFFF, and lone surrogates.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def is_bad_url(url: str) -> bool:
    """A scheme that executes or embeds instead of linking (after entity decoding, and
    ignoring tabs and newlines inside the scheme, as browsers do)."""
    return bool(_BAD_SCHEME.match(_IGNORED_IN_URL.sub("", html.unescape(url))))


def is_allowed_link(url: str) -> bool:
    """An absolute http(s) or mailto: link: the one rule for item fields, item bodies and the
    build's link check, so `check` can never pass a link the build refuses."""
    return not is_bad_url(url) and bool(_ABSOLUTE_LINK.fullmatch(url.strip()))


def control_chars(text: str) -> list[tuple[int, str]]:
    """(line, character) of every character MJML cannot carry, for the contributor's notice."""
    return [(text.count("\n", 0, m.start()) + 1, m.group()) for m in CONTROL_CHARS.finditer(text)]


def strip_control_chars(text: str) -> str:
    return CONTROL_CHARS.sub("", text)


def char_names(chars: list[str]) -> str:
    """'U+000B, U+0001': invisible characters named so a contributor can search for them."""
    return ", ".join(dict.fromkeys(f"U+{ord(c):04X}" for c in chars))


def links_in(fragment: str) -> list[str]:
    """Every href in HTML as a mail client reads it (entities decoded): the build's view."""
    return [
        html.unescape(next(g for g in m.groups() if g is not None))
        for m in _HREF.finditer(fragment)
    ]
