"""Item files: the contributors' interface, validated into `Item`s or precise `Problem`s.

Contributors never run the pipeline, so every message names the file, the line where known,
the field, and what to write instead; every problem of every file is reported in one run, and
no input, however broken, gives a traceback.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from email_validator import EmailNotValidError, validate_email

from newsflash.content import (
    CONTROL_CHARS,
    char_names,
    control_chars,
    is_allowed_link,
    render_markdown,
    strip_control_chars,
)
from newsflash.files import slug

FIELDS: dict[str, str] = {
    "title": "the item's headline",
    "section": "which section it belongs to (see config.toml [[sections]])",
    "date": "YYYY-MM-DD: when it happened or was published",
    "author": "who wrote it",
    "organisation": "the organisation or working group behind it",
    "summary": "one or two sentences; shown when the item has no text, and in the archive feed",
    "link": "https:// address for 'read more'",
    "link_text": "the words on the 'read more' button",
    "image": "https:// address of an image",
    "image_alt": "what the image shows, for readers who cannot see it",
    "order": "a whole number; lower comes first within the section",
    "edition": "YYYY-MM: pin the item to that edition",
    "status": "draft or ready",
    "contact": "your email address, for notices about this item",
}
REQUIRED = ("title", "section", "date")
STATUSES = ("draft", "ready")
ITEM_SUFFIXES = (".md", ".markdown")
IGNORED_NAMES = {"readme.md", "readme.markdown"}
_EDITION_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring = 2, 4, 4, 80
ONE_LINE = ("title", "author", "organisation", "link_text", "image_alt")
_LINE_BREAK = re.compile(r"\s*[\n\x85\u2028\u2029]\s*")
_CONTROL_HINT = (
    "Remove them in your editor (they are invisible, and often come from pasting out of a "
    "word processor)."
)


def _shown(value: Any) -> str:
    """A value for a message; bounded, because YAML aliases can nest lists a billion deep,
    and with control characters spelled out, so a message never drives the terminal."""
    text = value.strip() if isinstance(value, str) else _SHORT.repr(value)
    return CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# libyaml's parser when installed (PyYAML wheels ship it): reading front matter is most of a
# build's item-loading time. Safe either way: SafeConstructor, no arbitrary objects.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc]
    """SafeLoader that keeps an impossible date (2022-02-30) as text, reported as a bad date."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)  # type: ignore[arg-type]
    except (ValueError, AttributeError):  # AttributeError: '!!timestamp x'
        return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, in words a contributor can act on."""

    path: str
    message: str
    field: str | None = None
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line else "")
        what = f"{self.field}: " if self.field else ""
        return f"{where}: {self.severity}: {what}{self.message}"


@dataclass(frozen=True)
class Item:
    """A validated item with its body already sanitised; immutable so editions can share it."""

    key: str
    sha256: str
    title: str
    section: str
    date: dt.date
    status: str = "ready"
    author: str = ""
    organisation: str = ""
    summary: str = ""
    link: str = ""
    link_text: str = "Read more"
    image: str = ""
    image_alt: str = ""
    order: int = 100
    edition: str | None = None
    contact: str = ""
    body_html: str = ""
    body_text: str = ""
    anchor: str = field(default="", compare=False)


@dataclass(frozen=True)
class LoadResult:
    items: tuple[Item, ...]
    problems: tuple[Problem, ...]
    failed: tuple[str, ...]  # keys of files that yielded no item

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


def _split_front_matter(text: str) -> tuple[str, str, int] | None:
    """(yaml, body, line where body starts) or None when the file has no front matter."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    return None


def _parse_yaml(fm: str) -> tuple[Any, yaml.Node | None]:
    """The front matter's values and its node tree (for line numbers), parsed once."""
    loader = _Loader(fm)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _key_lines(node: yaml.Node | None) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Line of each field, and fields written twice (YAML silently keeps the last one)."""
    if not isinstance(node, yaml.MappingNode):
        return {}, []
    lines: dict[str, int] = {}
    repeated: list[tuple[str, int]] = []
    for k, _ in node.value:
        if not hasattr(k, "value"):
            continue
        name, line = str(k.value), k.start_mark.line + 2
        if name in lines:
            repeated.append((name, line))
        else:
            lines[name] = line
    return lines, repeated


def _anchor(key: str) -> str:
    stem = slug(Path(key).stem)
    return f"item-{stem}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"


def parse_item(data: bytes, key: str, sections: Sequence[str]) -> tuple[Item | None, list[Problem]]:
    """Validate one file's bytes; pure, so the property tests can throw anything at it."""
    problems: list[Problem] = []

    def err(msg: str, fld: str | None = None, line: int | None = None) -> None:
        problems.append(Problem(key, msg, fld, line))

    if not data.strip():
        err(
            "the file is empty. Start it with front matter: a '---' line, 'title: ...', "
            "'section: ...', 'date: YYYY-MM-DD', a '---' line, then the text."
        )
        return None, problems
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        err(
            f"not UTF-8 (byte 0x{data[e.start]:02x} at position {e.start}). Save the file "
            "with UTF-8 encoding in your editor.",
            line=line,
        )
        return None, problems
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        err(
            "the file holds NUL characters; is it a binary file? Save the item as plain "
            "text (UTF-8) in a text editor."
        )
        return None, problems
    found = control_chars(text)
    if found:
        lines_with = sorted({line for line, _ in found})
        more = f" (also on line {', '.join(map(str, lines_with[1:6]))})" if lines_with[1:] else ""
        problems.append(
            Problem(
                key,
                f"control characters {char_names([c for _, c in found])} were left out{more}: "
                f"an email cannot carry them. {_CONTROL_HINT}",
                line=lines_with[0],
                severity="warning",
            )
        )
        text = strip_control_chars(text)
    split = _split_front_matter(text)
    if split is None and text.lstrip("\ufeff").split("\n", 1)[0].strip() == "---":
        err(
            "the front matter is not closed: add a line '---' after the last field, "
            "before the text.",
            line=1,
        )
        return None, problems
    if split is None:
        err(
            "no front matter. The file must start with a line '---', then fields such as "
            "'title: ...', then another '---' line, then the text.",
            line=1,
        )
        return None, problems
    fm, body, body_line = split
    try:
        meta, node = _parse_yaml(fm)
    except Exception as e:  # PyYAML's constructors also raise ValueError ('2022-02-30'),
        # KeyError ('!!bool x'), RecursionError (deep nesting): all mean a broken file
        mark = getattr(e, "problem_mark", None)
        yaml_line = mark.line + 2 if mark is not None else None
        reason = getattr(e, "problem", None) or str(e).split("\n")[0]
        err(
            f"the front matter is not valid YAML ({reason}). Write one 'field: value' per "
            "line; put values with ':' or '#' in quotes.",
            line=yaml_line,
        )
        return None, problems
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        err("the front matter must be 'field: value' lines, e.g. 'title: WG1 meeting'.", line=2)
        return None, problems
    lines, repeated = _key_lines(node)
    for name, line in repeated:
        err(f"written twice (first on line {lines[name]}); remove one of them.", name, line)
    values: dict[str, Any] = {}
    for raw_key, value in meta.items():
        k = str(raw_key)
        if k not in FIELDS:
            hint = difflib.get_close_matches(k.lower(), FIELDS, n=1)
            sug = f" Did you mean '{hint[0]}'?" if hint else f" Known fields: {', '.join(FIELDS)}."
            err(f"unknown field.{sug}", _shown(k), lines.get(k))
            continue
        values[k] = value

    def text_field(k: str) -> str:
        """The field as the email will show it: control characters (which YAML escapes such
        as "\\x01" produce) left out with a warning, one-line fields on one line."""
        v = values.get(k)
        if v is None:
            return ""
        if isinstance(v, (bool, dict, list)):
            err(f"must be text ({FIELDS[k]}), not {type(v).__name__}.", k, lines.get(k))
            return ""
        text = str(v)
        bad = CONTROL_CHARS.findall(text)
        if bad:
            problems.append(
                Problem(
                    key,
                    f"control characters {char_names(bad)} were left out: an email cannot "
                    f"carry them. Remove the escapes (such as \\x01) from the value.",
                    k,
                    lines.get(k),
                    "warning",
                )
            )
            text = strip_control_chars(text)
        if k in ONE_LINE:
            text = _LINE_BREAK.sub(" ", text)
        return text.strip()

    title = text_field("title")
    section = text_field("section")
    cleaned = {"title": title, "section": section}  # a title of control characters is none
    for k in REQUIRED:
        raw = values.get(k)
        if raw in (None, "") or (isinstance(raw, str) and cleaned.get(k) == ""):
            err(f"missing. Add '{k}: ...' ({FIELDS[k]}).", k, 2)
    if section and section not in sections:
        hint = difflib.get_close_matches(section, sections, n=1)
        sug = f"did you mean '{hint[0]}'? " if hint else ""
        err(
            f"unknown section '{section}'; {sug}valid sections: {', '.join(sections)}.",
            "section",
            lines.get("section"),
        )
    date: dt.date | None = None
    raw_date = values.get("date")
    if isinstance(raw_date, dt.datetime):
        date = raw_date.date()
    elif isinstance(raw_date, dt.date):
        date = raw_date
    elif raw_date not in (None, ""):
        try:
            date = dt.date.fromisoformat(_shown(raw_date))
        except ValueError:
            err(
                f"'{_shown(raw_date)}' is not a date. Write it as YYYY-MM-DD, e.g. 2022-01-17.",
                "date",
                lines.get("date"),
            )
    status = text_field("status").lower() or "ready"
    if status not in STATUSES:
        err(f"'{status}' is not a status; write 'draft' or 'ready'.", "status", lines.get("status"))
    order_raw = values.get("order", 100)
    order = 100
    if isinstance(order_raw, bool) or not isinstance(order_raw, int):
        err(
            f"'{_shown(order_raw)}' is not a whole number; write e.g. 'order: 10'.",
            "order",
            lines.get("order"),
        )
    else:
        order = order_raw
    edition = text_field("edition") or None
    if "edition" in values and isinstance(values["edition"], dt.date):
        edition = None
        err(
            "write the edition as 'YYYY-MM' in quotes, e.g. edition: \"2022-03\".",
            "edition",
            lines.get("edition"),
        )
    elif edition is not None and not _EDITION_RE.match(edition):
        err(
            f"'{edition}' is not an edition; write YYYY-MM, e.g. \"2022-03\".",
            "edition",
            lines.get("edition"),
        )
    link = text_field("link")
    if link and not is_allowed_link(link):
        err(
            f"'{_shown(link)}' is not allowed; write a full https:// address (or "
            "mailto:name@example.org), with no spaces.",
            "link",
            lines.get("link"),
        )
    image = text_field("image")
    image_alt = text_field("image_alt")
    if image and (not is_allowed_link(image) or image.lower().startswith("mailto:")):
        err(
            f"'{_shown(image)}' is not allowed; write the full https:// address of an image on "
            "the web, with no spaces.",
            "image",
            lines.get("image"),
        )
    if image and not image_alt:
        err(
            "an image needs 'image_alt: ...' describing what it shows, for readers who "
            "cannot see it.",
            "image_alt",
            lines.get("image"),
        )
    contact = text_field("contact")
    if contact:
        try:
            contact = validate_email(contact, check_deliverability=False).normalized
        except EmailNotValidError as e:
            err(
                f"'{contact}' is not an email address ({e}). Write your address, e.g. "
                "name@example.org.",
                "contact",
                lines.get("contact"),
            )
    rendered = render_markdown(body)
    for bad in rendered.bad_links:
        err(
            f"link '{_shown(bad.url)}' is not allowed; links must start with https://, http:// "
            "or mailto: and be complete (https://example.org/page, mailto:name@example.org), "
            "with no spaces.",
            "body",
            body_line + bad.line - 1,
        )
    for img_line in rendered.images:
        err(
            "images inside the text are not shown in the email; use the 'image:' and "
            "'image_alt:' fields instead.",
            "body",
            body_line + img_line - 1,
        )
    if not body.strip() and not values.get("summary"):
        problems.append(
            Problem(
                key,
                "the item has no text and no summary. Write the text under the second '---' "
                "line, or add 'summary: ...'.",
                "body",
                body_line,
                "warning",
            )
        )
    # Read before deciding: a wrong type in these fields is an error too, not a silent "".
    author, organisation = text_field("author"), text_field("organisation")
    summary, link_text = text_field("summary"), text_field("link_text") or "Read more"
    if any(p.severity == "error" for p in problems) or date is None:
        return None, problems
    item = Item(
        key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        title=title,
        section=section,
        date=date,
        status=status,
        author=author,
        organisation=organisation,
        summary=summary,
        link=link,
        link_text=link_text,
        image=image,
        image_alt=image_alt,
        order=order,
        edition=edition,
        contact=contact,
        body_html=rendered.html,
        body_text=rendered.text,
        anchor=_anchor(key),
    )
    return item, problems


def item_files(folder: Path) -> list[Path]:
    """Every candidate file under the drop folder, in a stable order."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def load_items(
    folder: Path, sections: Sequence[str], files: Iterable[Path] | None = None
) -> LoadResult:
    """Load every item file under `folder`; bad files become problems, never exceptions."""
    items: list[Item] = []
    problems: list[Problem] = []
    failed: list[str] = []
    for path in files if files is not None else item_files(folder):
        key = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in ITEM_SUFFIXES:
            problems.append(
                Problem(key, "not an item file (items end in .md); ignored.", severity="warning")
            )
            continue
        if path.name.lower() in IGNORED_NAMES:
            continue
        try:
            data = path.read_bytes()
        except OSError as e:
            problems.append(Problem(key, f"cannot be read ({e.strerror})."))
            failed.append(key)
            continue
        item, found = parse_item(data, key, sections)
        problems.extend(found)
        if item is None:
            failed.append(key)
        else:
            items.append(item)
    return LoadResult(tuple(items), tuple(problems), tuple(failed))
