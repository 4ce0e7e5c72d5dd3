"""Item files: the contributors' interface, validated into `Item`s or precise `Problem`s.

Contributors never run the pipeline, so every message names the file, the line where known,
the field, and what to write instead; every problem of every file is reported in one run, and
no input, however broken, gives a traceback.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from newsflash import read_cache
from newsflash.content import (
    RenderedBody,
    char_names,
    control_chars,
    render_markdown,
    strip_control_chars,
)
from newsflash.files import slug
from newsflash.front_matter import (
    CURLY,
    curly_quoted_values,
    key_lines,
    parse_yaml,
    split_front_matter,
)
from newsflash.item_fields import FIELDS, FieldChecks, Severity, shown

ITEM_SUFFIXES = (".md", ".markdown")
IGNORED_NAMES = {"readme.md", "readme.markdown"}

_CONTROL_HINT = (
    "Remove them in your editor (they are invisible, and often come from pasting out of a "
    "word processor)."
)


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


def _anchor(key: str) -> str:
    stem = slug(Path(key).stem)
    return f"item-{stem}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"


def parse_item(data: bytes, key: str, sections: Sequence[str]) -> tuple[Item | None, list[Problem]]:
    """Validate one file's bytes; pure, so the property tests can throw anything at it.

    Pure also means a file read again unchanged parses to the same result: the preview and the
    scheduler rebuild an edition whenever one file changes, so the others come from a cache
    keyed by their bytes, name and the sections (Markdown parsing was most of a warm build)."""
    item, problems = _parse_cached(data, key, tuple(sections))
    return item, list(problems)


@functools.lru_cache(maxsize=2048)
def _parse_cached(
    data: bytes, key: str, sections: tuple[str, ...]
) -> tuple[Item | None, tuple[Problem, ...]]:
    item, problems = _ItemParser(data, key, sections).run()
    return item, tuple(problems)


class _Stop(Exception):
    """A step found the file unreadable past this point; its problem is already recorded."""


class _ItemParser:
    """One pass over one file, in steps: decode, front matter, known fields, field checks, body.

    Each step records every problem it finds; a step after which nothing more can be read
    raises _Stop, and the file then yields its problems and no item."""

    def __init__(self, data: bytes, key: str, sections: Sequence[str]) -> None:
        self.data = data
        self.key = key
        self.sections = sections
        self.problems: list[Problem] = []
        self.values: dict[str, Any] = {}
        self.lines: dict[str, int] = {}

    def err(self, msg: str, fld: str | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(self.key, msg, fld, line))

    def warn(self, msg: str, fld: str | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(self.key, msg, fld, line, "warning"))

    def _report(self, msg: str, fld: str | None, line: int | None, severity: Severity) -> None:
        self.problems.append(Problem(self.key, msg, fld, line, severity))

    def run(self) -> tuple[Item | None, list[Problem]]:
        try:
            text = self._decode()
            fm, body, body_line = self._front_matter(text)
            self._known_fields(fm)
        except _Stop:
            return None, self.problems
        checks = FieldChecks(self.values, self.lines, self.sections, self._report)
        fields = checks.checked()
        rendered = self._body(body, body_line)
        # Read before deciding: a wrong type in these fields is an error too, not a silent "".
        fields |= {
            "author": checks.text("author"),
            "organisation": checks.text("organisation"),
            "summary": checks.text("summary"),
            "link_text": checks.text("link_text") or "Read more",
        }
        if any(p.severity == "error" for p in self.problems) or fields["date"] is None:
            return None, self.problems
        item = Item(
            key=self.key,
            sha256=hashlib.sha256(self.data).hexdigest(),
            body_html=rendered.html,
            body_text=rendered.text,
            anchor=_anchor(self.key),
            **fields,
        )
        return item, self.problems

    # -- decode: bytes to text a template can carry ----------------------------------------

    def _decode(self) -> str:
        data = self.data
        if not data.strip():
            self.err(
                "the file is empty. Start it with front matter: a '---' line, 'title: ...', "
                "'section: ...', 'date: YYYY-MM-DD', a '---' line, then the text."
            )
            raise _Stop
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            self.err(
                f"not UTF-8 (byte 0x{data[e.start]:02x} at position {e.start}). Save the file "
                "with UTF-8 encoding in your editor.",
                line=data[: e.start].count(b"\n") + 1,
            )
            raise _Stop from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\x00" in text:
            self.err(
                "the file holds NUL characters; is it a binary file? Save the item as plain "
                "text (UTF-8) in a text editor."
            )
            raise _Stop
        return self._without_control_chars(text)

    def _without_control_chars(self, text: str) -> str:
        found = control_chars(text)
        if not found:
            return text
        lines_with = sorted({line for line, _ in found})
        more = f" (also on line {', '.join(map(str, lines_with[1:6]))})" if lines_with[1:] else ""
        self.warn(
            f"control characters {char_names([c for _, c in found])} were left out{more}: "
            f"an email cannot carry them. {_CONTROL_HINT}",
            line=lines_with[0],
        )
        return strip_control_chars(text)

    # -- front matter: the YAML block, as a mapping ------------------------------------------

    def _front_matter(self, text: str) -> tuple[str, str, int]:
        split = split_front_matter(text)
        if split is None and text.lstrip("\ufeff").split("\n", 1)[0].strip() == "---":
            self.err(
                "the front matter is not closed: add a line '---' after the last field, "
                "before the text.",
                line=1,
            )
            raise _Stop
        if split is None:
            self.err(
                "no front matter. The file must start with a line '---', then fields such as "
                "'title: ...', then another '---' line, then the text.",
                line=1,
            )
            raise _Stop
        return split

    def _mapping(self, fm: str) -> tuple[dict[Any, Any], yaml.Node | None]:
        try:
            meta, node = parse_yaml(fm)
        except Exception as e:  # PyYAML's constructors also raise ValueError ('2022-02-30'),
            # KeyError ('!!bool x'), RecursionError (deep nesting): all mean a broken file
            mark = getattr(e, "problem_mark", None)
            reason = getattr(e, "problem", None) or str(e).split("\n")[0]
            line = mark.line if mark is not None else None
            self.err(
                f"the front matter is not valid YAML ({reason}). Write one 'field: value' per "
                f"line; put values with ':' or '#' in quotes.{_curly_hint(fm, line)}",
                line=line + 2 if line is not None else None,
            )
            raise _Stop from None
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            self.err(
                "the front matter must be 'field: value' lines, e.g. 'title: WG1 meeting'.",
                line=2,
            )
            raise _Stop
        return meta, node

    # -- known fields: every field named once, and named right -------------------------------

    def _known_fields(self, fm: str) -> None:
        meta, node = self._mapping(fm)
        self.lines, repeated = key_lines(node)
        for name, line in repeated:
            self.err(
                f"written twice (first on line {self.lines[name]}); remove one of them.",
                name,
                line,
            )
        for raw_key, value in meta.items():
            k = str(raw_key)
            if k not in FIELDS:
                hint = difflib.get_close_matches(k.lower(), FIELDS, n=1)
                sug = (
                    f" Did you mean '{hint[0]}'?"
                    if hint
                    else f" Known fields: {', '.join(FIELDS)}."
                )
                self.err(f"unknown field.{sug}", shown(k), self.lines.get(k))
                continue
            self.values[k] = value
        self._curly_quotes(node)

    def _curly_quotes(self, node: yaml.Node | None) -> None:
        """A value typed in curly quotes is read as if they were straight ones: a word
        processor's quotes around a section or a date would otherwise make it unknown."""
        for k, inner in curly_quoted_values(node).items():
            if k not in self.values:
                continue
            raw = str(self.values[k])
            self.values[k] = inner
            self.warn(
                f"the value {shown(raw)} is in curly quotes ({raw[0]} {raw[-1]}), which YAML "
                f"does not read as quotes; it is read as '{shown(inner)}'. Write straight "
                'quotes ("...") or none.',
                k,
                self.lines.get(k),
            )

    # -- body: the Markdown, rendered once and judged as the email will carry it -------------

    def _body(self, body: str, body_line: int) -> RenderedBody:
        rendered = render_markdown(body)
        for bad in rendered.bad_links:
            self.err(
                f"link '{shown(bad.url)}' is not allowed; links must start with https://, "
                "http:// or mailto: and be complete (https://example.org/page, "
                "mailto:name@example.org), with no spaces.",
                "body",
                body_line + bad.line - 1,
            )
        for img_line in rendered.images:
            self.err(
                "images inside the text are not shown in the email; use the 'image:' and "
                "'image_alt:' fields instead.",
                "body",
                body_line + img_line - 1,
            )
        if not body.strip() and not self.values.get("summary"):
            self.warn(
                "the item has no text and no summary. Write the text under the second '---' "
                "line, or add 'summary: ...'.",
                "body",
                body_line,
            )
        return rendered


def _curly_hint(fm: str, line: int | None) -> str:
    """Why quotes did not help, when the line YAML stopped on has curly ones."""
    lines = fm.split("\n")
    if line is None or line >= len(lines) or not CURLY & set(lines[line]):
        return ""
    return (
        " The line has curly quotes (“ ” ‘ ’), which YAML does not read as quotes: "
        'write straight ones (").'
    )


def item_files(folder: Path) -> list[Path]:
    """Every candidate file under the drop folder, in a stable order."""
    return [path for path, _ in _keyed_files(folder)]


def _keyed_files(folder: Path) -> list[tuple[Path, str]]:
    """Each candidate file and its key (its path under the folder)."""
    return [
        (path, key)
        for path, key in read_cache.files_under(folder)
        if not any(part.startswith((".", "_")) for part in key.split("/"))
    ]


def load_items(
    folder: Path, sections: Sequence[str], files: Iterable[Path] | None = None
) -> LoadResult:
    """Load every item file under `folder`; bad files become problems, never exceptions."""
    items: list[Item] = []
    problems: list[Problem] = []
    failed: list[str] = []
    listed = (
        _keyed_files(folder)
        if files is None
        else [(p, p.relative_to(folder).as_posix()) for p in files]
    )
    for path, key in listed:
        if path.suffix.lower() not in ITEM_SUFFIXES:
            problems.append(
                Problem(key, "not an item file (items end in .md); ignored.", severity="warning")
            )
            continue
        if path.name.lower() in IGNORED_NAMES:
            continue
        try:
            data = read_cache.read_bytes(path)  # unchanged files from memory
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
