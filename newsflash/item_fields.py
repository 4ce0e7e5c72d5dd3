"""An item's fields: what each one means, and each value checked or a problem saying what to write.

The checks know nothing of files: they read the front matter's values and lines and report
every finding through a callback, in the order a contributor reads them, so items.py can
name the file and keep one list per file.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import re
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

from email_validator import EmailNotValidError, validate_email

from newsflash.content_rules import CONTROL_CHARS, char_names, is_allowed_link, strip_control_chars
from newsflash.item_model import Severity
from newsflash.months import MONTHS

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
_EDITION_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring = 2, 4, 4, 80
ONE_LINE = ("title", "author", "organisation", "link_text", "image_alt")
_LINE_BREAK = re.compile(r"\s*[\n\x85\u2028\u2029]\s*")
Report = Callable[[str, str | None, int | None, Severity], None]
"""(message, field, line, severity): how a check tells its caller what is wrong."""

MAX_ORDER = 999_999_999  # items sort by it; beyond, a typo or an attack


def shown(value: Any) -> str:
    """A value for a message; bounded, because YAML aliases can nest lists a billion deep,
    and with control characters spelled out, so a message never drives the terminal."""
    text = value.strip() if isinstance(value, str) else _SHORT.repr(value)
    return CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def unknown_section(section: str, sections: Sequence[str]) -> str:
    """The one message for a section config.toml lacks, so `check` and `new` say the same."""
    hint = difflib.get_close_matches(section, sections, n=1)
    sug = f"did you mean '{hint[0]}'? " if hint else ""
    return f"unknown section '{shown(section)}'; {sug}valid sections: {', '.join(sections)}."


def read_date(text: str) -> dt.date:
    """A YYYY-MM-DD date, or ValueError with the message to show.

    A date written the right way round but impossible (2022-02-30, 2022-13-01) is told apart
    from one written another way: asking its writer to "write YYYY-MM-DD" would be no help.
    """
    match = _DATE_RE.match(text.strip())
    if match is None:
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"'{text}' is not a date. Write it as YYYY-MM-DD, e.g. 2022-01-17."
            ) from None
    year, month, day = (int(g) for g in match.groups())
    ranges = (("year", year, year > 0), ("month", month, 1 <= month <= 12), ("day", day, day > 0))
    impossible = [f"{name} {value}" for name, value, ok in ranges if not ok]
    if impossible:
        raise ValueError(
            f"'{text}' is not a real date: there is no {impossible[0]}. Write YYYY-MM-DD "
            "with a month from 01 to 12, e.g. 2022-01-17."
        )
    try:
        return dt.date(year, month, day)
    except ValueError:
        last = calendar.monthrange(year, month)[1]
        raise ValueError(
            f"'{text}' is not a real date: {MONTHS[month - 1]} {year} has {last} days. "
            f"Write a day that exists, e.g. {year:04d}-{month:02d}-{last:02d}."
        ) from None


class FieldChecks:
    """The known fields of one file, each read as the email will show it or reported."""

    def __init__(
        self, values: dict[str, Any], lines: dict[str, int], sections: Sequence[str], report: Report
    ) -> None:
        self.values = values
        self.lines = lines
        self.sections = sections
        self.report = report

    def _err(self, msg: str, fld: str | None = None, line: int | None = None) -> None:
        self.report(msg, fld, line, "error")

    def _warn(self, msg: str, fld: str | None = None, line: int | None = None) -> None:
        self.report(msg, fld, line, "warning")

    def text(self, k: str) -> str:
        """The field as the email will show it: control characters (which YAML escapes such
        as "\\x01" produce) left out with a warning, one-line fields on one line."""
        v = self.values.get(k)
        if v is None:
            return ""
        if isinstance(v, (bool, dict, list)):
            self._err(f"must be text ({FIELDS[k]}), not {type(v).__name__}.", k, self.lines.get(k))
            return ""
        text = str(v)
        bad = CONTROL_CHARS.findall(text)
        if bad:
            self._warn(
                f"control characters {char_names(bad)} were left out: an email cannot "
                f"carry them. Remove the escapes (such as \\x01) from the value.",
                k,
                self.lines.get(k),
            )
            text = strip_control_chars(text)
        if k in ONE_LINE:
            text = _LINE_BREAK.sub(" ", text)
        return text.strip()

    def checked(self) -> dict[str, Any]:
        """Every field but the free texts, checked in the order the problems are listed."""
        title, section = self.text("title"), self.text("section")
        self._required({"title": title, "section": section})
        self._section(section)
        fields: dict[str, Any] = {
            "title": title,
            "section": section,
            "date": self._date(),
            "status": self._status(),
            "order": self._order(),
            "edition": self._edition(),
            "link": self._link(),
        }
        fields["image"], fields["image_alt"] = self._image()
        fields["contact"] = self._contact()
        return fields

    def _required(self, cleaned: dict[str, str]) -> None:
        """A required field left out, empty, or (title, section) only control characters."""
        for k in REQUIRED:
            raw = self.values.get(k)
            if raw in (None, "") or (isinstance(raw, str) and cleaned.get(k) == ""):
                self._err(f"missing. Add '{k}: ...' ({FIELDS[k]}).", k, 2)

    def _section(self, section: str) -> None:
        if section and section not in self.sections:
            self._err(unknown_section(section, self.sections), "section", self.lines.get("section"))

    def _date(self) -> dt.date | None:
        raw = self.values.get("date")
        if isinstance(raw, dt.datetime):
            return raw.date()
        if isinstance(raw, dt.date):
            return raw
        if raw in (None, ""):
            return None
        try:
            return read_date(shown(raw))
        except ValueError as e:
            self._err(str(e), "date", self.lines.get("date"))
            return None

    def _status(self) -> str:
        status = self.text("status").lower() or "ready"
        if status not in STATUSES:
            self._err(
                f"'{status}' is not a status; write 'draft' or 'ready'.",
                "status",
                self.lines.get("status"),
            )
        return status

    def _order(self) -> int:
        raw = self.values.get("order", 100)
        if isinstance(raw, bool) or not isinstance(raw, int):
            self._err(
                f"'{shown(raw)}' is not a whole number; write e.g. 'order: 10'.",
                "order",
                self.lines.get("order"),
            )
            return 100
        if abs(raw) > MAX_ORDER:  # a number this long cannot even be printed (nor kept)
            self._err(
                f"order is too large; write a whole number from -{MAX_ORDER} to {MAX_ORDER}.",
                "order",
                self.lines.get("order"),
            )
            return 100
        return raw

    def _edition(self) -> str | None:
        edition = self.text("edition") or None
        if isinstance(self.values.get("edition"), dt.date):  # YAML read 2022-03 as a date
            self._err(
                "write the edition as 'YYYY-MM' in quotes, e.g. edition: \"2022-03\".",
                "edition",
                self.lines.get("edition"),
            )
            return None
        if edition is not None and not _EDITION_RE.match(edition):
            self._err(
                f"'{edition}' is not an edition; write YYYY-MM, e.g. \"2022-03\".",
                "edition",
                self.lines.get("edition"),
            )
        return edition

    def _link(self) -> str:
        link = self.text("link")
        if link and not is_allowed_link(link):
            self._err(
                f"'{shown(link)}' is not allowed; write a full https:// address (or "
                "mailto:name@example.org), with no spaces.",
                "link",
                self.lines.get("link"),
            )
        return link

    def _image(self) -> tuple[str, str]:
        image, image_alt = self.text("image"), self.text("image_alt")
        if image and (not is_allowed_link(image) or image.lower().startswith("mailto:")):
            self._err(
                f"'{shown(image)}' is not allowed; write the full https:// address of an image "
                "on the web, with no spaces.",
                "image",
                self.lines.get("image"),
            )
        if image and not image_alt:
            self._err(
                "an image needs 'image_alt: ...' describing what it shows, for readers who "
                "cannot see it.",
                "image_alt",
                self.lines.get("image"),
            )
        return image, image_alt

    def _contact(self) -> str:
        contact = self.text("contact")
        if not contact:
            return contact
        try:
            return validate_email(contact, check_deliverability=False).normalized
        except EmailNotValidError as e:
            self._err(
                f"'{contact}' is not an email address ({e}). Write your address, e.g. "
                "name@example.org.",
                "contact",
                self.lines.get("contact"),
            )
            return contact
