"""One item file's bytes validated into an `Item` or the `Problem`s that say what to write.

Contributors never run the pipeline, so every message names the file, the line where known,
the field, and what to write instead; every problem of a file is reported at once, and no
input, however broken, gives a traceback. This is the module that reads YAML and Markdown
(and, through the field checks, email_validator): items.py imports it only when an item is
in no cache.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from newsflash.content import RenderedBody, render_markdown
from newsflash.content_rules import char_names, control_chars, strip_control_chars
from newsflash.files import slug
from newsflash.front_matter import (
    CURLY,
    curly_quoted_values,
    key_lines,
    parse_yaml,
    split_front_matter,
)
from newsflash.item_fields import FIELDS, FieldChecks, shown
from newsflash.item_model import Item, Problem, Severity

_CONTROL_HINT = (
    "Remove them in your editor (they are invisible, and often come from pasting out of a "
    "word processor)."
)


def parse(data: bytes, key: str, sections: Sequence[str]) -> tuple[Item | None, list[Problem]]:
    """Validate one file's bytes: pure, a function of the bytes, the key and the sections."""
    return _ItemParser(data, key, sections).run()


def _anchor(key: str) -> str:
    stem = slug(Path(key).stem)
    return f"item-{stem}-{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"


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
