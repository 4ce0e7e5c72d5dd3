"""The checks behind config.toml's typed values: each refuses a value at load, with what to write.

A setting reaches an email header (Subject, From, Reply-To, List-Unsubscribe), a URL or a
format string long after `newsflash check` said the file was fine. Each check here runs when
the file is read instead, so a wrong value is one line naming the key, never a traceback in
`build` or a header SendGrid passes on unchanged. Every function raises ValueError, which
pydantic turns into an error located at the key.

email_validator, pydantic and its URL adapter are loaded by the first check that needs them,
not here: a command whose config.toml comes from the config cache (config_cache.py) validates
nothing, and they were most of the config's start-up.
"""

from __future__ import annotations

import difflib
import functools
import re
import string
import unicodedata
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pydantic import HttpUrl, TypeAdapter

# Bidirectional embeddings, overrides and isolates: invisible, and they make a From name or a
# subject read differently from what it says ("Trojan Source" spoofing).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CHARACTER_NAMES = {"\t": "a tab", "\n": "a line break", "\r": "a carriage return", "\0": "NUL"}
# Characters a URL cannot hold unescaped; a URL parser would quietly percent-encode them.
_URL_UNSAFE = frozenset(' <>"{}|\\^`')
_EDITION_LIKE = re.compile(r"\D*(\d{4})\D+(\d{1,2})\D*")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


class Multiline:
    """Marks a setting that may hold line breaks (Markdown paragraphs), in its type:
    `Annotated[str, MULTILINE]`. Every other string setting is one line."""

    allowed = "\n\t"


MULTILINE = Multiline()


@functools.cache
def _http_url() -> TypeAdapter[HttpUrl]:
    """pydantic's URL parser, built on the first URL checked (its schema costs start-up)."""
    from pydantic import HttpUrl, TypeAdapter  # deferred: start-up time (module docstring)

    return TypeAdapter(HttpUrl)


def _parsed_url(value: str) -> HttpUrl:
    """The URL as pydantic parses it; its refusal as the ValueError every check raises."""
    from pydantic import ValidationError  # deferred: pydantic's start-up (module docstring)

    try:
        return _http_url().validate_python(value)
    except ValidationError as e:
        raise ValueError(f"is not a web address ({e.errors()[0]['msg']})") from None


def _forbidden(char: str, allowed: str) -> bool:
    if char in allowed:
        return False
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS


def _label(char: str) -> str:
    name = _CHARACTER_NAMES.get(char) or unicodedata.name(char, "a control character").lower()
    return f"{name} (U+{ord(char):04X})"


def refuse_invisible(value: str, *, multiline: bool = False, what: str = "") -> str:
    """Refuse control characters, line and paragraph separators and bidi overrides.

    In a one-line setting a line break is how a header gets injected; elsewhere these
    characters are invisible in an editor and break what reads the value. `what` names the
    part of a list or table that holds the value.
    """
    allowed = Multiline.allowed if multiline else ""
    for position, char in enumerate(value, start=1):
        if _forbidden(char, allowed):
            kind = "a paragraph" if multiline else "one line"
            raise ValueError(
                f"{what}holds {_label(char)} at character {position}; "
                f"write it as {kind} of visible text"
            )
    return value


def strings_in(value: Any) -> Iterator[tuple[str, str]]:
    """(what, text) for each string a raw TOML value holds at its own level: itself, a list's
    items, a table's keys (nested tables are checked by their own model)."""
    if isinstance(value, str):
        yield "", value
    elif isinstance(value, list | tuple):
        yield from ((f"item {n} ", v) for n, v in enumerate(value, 1) if isinstance(v, str))
    elif isinstance(value, Mapping):
        yield from ((f"the key {k!r} ", k) for k in value if isinstance(k, str))


def address(value: str) -> str:
    """A plain address SendGrid accepts: ASCII, an international domain as punycode."""
    if value.lower().startswith("mailto:"):
        raise ValueError("write the address without 'mailto:', e.g. unsubscribe@example.org")
    import email_validator  # deferred: start-up time (module docstring)

    try:
        valid = email_validator.validate_email(
            value, check_deliverability=False, allow_smtputf8=False
        )
    except email_validator.EmailNotValidError as e:
        raise ValueError(
            f"is not an email address ({e}); write a plain address such as "
            "secretariat@example.org, without a name or angle brackets"
        ) from None
    return valid.ascii_email or valid.normalized


def optional_address(value: str) -> str:
    return value and address(value)


def mailto_address(value: str) -> str:
    """An address that goes into `mailto:ADDRESS?subject=...` as it is, so it cannot hold the
    characters that would end or escape that URL."""
    value = optional_address(value)
    if set(value) & set("?#%&"):
        raise ValueError("cannot hold ?, #, % or & (it goes into a mailto: link as it is)")
    return value


def timezone(value: str) -> str:
    """An IANA zone this machine knows; a near miss is named."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        known = {z.lower(): z for z in zoneinfo.available_timezones()}
        hint = difflib.get_close_matches(value.lower(), known, n=1)
        mean = f" (did you mean '{known[hint[0]]}'?)" if hint else ""
        raise ValueError(
            f"is not a time zone{mean}; write an IANA name such as 'Europe/Brussels'"
        ) from None
    return value


def language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError("is not a language tag; write a BCP 47 tag such as 'en' or 'pt-BR'")
    return value


def colour(value: str) -> str:
    if not _COLOUR.fullmatch(value):
        raise ValueError("is not a colour; write a hex colour such as '#0b4f8a'")
    return value


def edition_id_hint(value: str) -> str:
    """ " (did you mean '2022-02'?)" for a YYYY-MM written another way, else ""."""
    m = _EDITION_LIKE.fullmatch(value)
    if m and 1 <= int(m.group(2)) <= 12:
        return f" (did you mean '{m.group(1)}-{int(m.group(2)):02d}'?)"
    return ""


def template(value: str, allowed: Mapping[str, object], required: Iterable[str] = ()) -> str:
    """A str.format template using only `allowed` names, as plain `{name}`, and `required` ones.

    Attribute and index lookups (`{title.__class__}`), positional fields and format specs are
    refused: the first is how a format string reads what it should not, the others fail at
    build time.
    """
    names = ", ".join(f"{{{n}}}" for n in allowed)
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as e:
        raise ValueError(f"{e}; write {{{{ and }}}} for a literal brace") from None
    used = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            mean = f" (did you mean '{{{close[0]}}}'?)" if close else ""
            raise ValueError(f"has an unknown placeholder '{{{name}}}'{mean}; use {names}")
        if spec or conversion:
            raise ValueError(f"write the placeholder as plain '{{{name}}}', without a format")
        used.add(name)
    missing = [n for n in required if n not in used]
    if missing:
        raise ValueError(f"must hold {', '.join(f'{{{n}}}' for n in missing)}")
    return value


def url(
    value: str,
    schemes: tuple[str, ...],
    *,
    extent: str = "any",
    example: str = "newsflash.example.org",
) -> str:
    """An absolute web address with one of `schemes`, a dotted host and nothing to escape.

    `extent` "base" refuses a query or fragment (other URLs are built by appending to it);
    "origin" refuses a path too (an API host).
    """
    example = f"{schemes[0]}://{example}"
    bad = next((c for c in value if c in _URL_UNSAFE), None)
    if bad is not None:
        what = "a space" if bad == " " else f"'{bad}'"
        raise ValueError(f"holds {what}; write the address without it (a space as %20)")
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"must start with {allowed}; write e.g. {example}")
    parsed = _parsed_url(value)
    if parsed.username is not None or parsed.password is not None:
        raise ValueError("must not hold a user name or password before the host")
    if not parsed.host or "." not in parsed.host:
        raise ValueError(f"needs a full host name; write e.g. {example}")
    if extent != "any" and (parts.query or parts.fragment or value.endswith(("?", "#"))):
        raise ValueError(f"must not hold a query or fragment ('?', '#'); write e.g. {example}/")
    if extent == "origin" and parts.path.strip("/"):
        raise ValueError(f"must be the host alone, without a path; write e.g. {example}")
    return value
