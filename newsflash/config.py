"""config.toml, validated on load into frozen, typed objects.

Every field carries its own description, so `docs` and error messages can quote it. An unknown
key or a wrong type is an error naming the key and the file; a secret found in the file is
refused, because config.toml is meant to be committed and shared.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
import types
import typing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from newsflash import config_values as cv
from newsflash.errors import ConfigError, NewsflashError
from newsflash.months import parse_edition_id

SECRET_KEYS = {"api_key", "sendgrid_api_key", "apikey", "password", "secret", "token"}
_SECRET_SUFFIXES = ("_key", "_token", "_secret", "_password", "apikey")
# A SendGrid API key: "SG." then two base64url parts; found anywhere in a value.
_SENDGRID_KEY = re.compile(r"SG\.[\w-]{16,}\.[\w-]{16,}")

SUBJECT_PLACEHOLDERS = {"name": "Newsflash", "number": 1, "month": "February 2022", "title": "T"}
GREETING_PLACEHOLDERS = {"first_name": "Anna"}
UNSUBSCRIBE_PLACEHOLDERS = {"recipient_id": "0000000000000000", "edition": "2022-02"}


def _edition_id(value: str) -> str:
    try:
        parse_edition_id(value)
        if value != value.strip():
            raise ValueError
    except (NewsflashError, ValueError):
        raise ValueError(
            f"is not an edition; write YYYY-MM, e.g. 2022-02{cv.edition_id_hint(value)}"
        ) from None
    return value


def _unsubscribe_url(value: str) -> str:
    """Both a template and, once filled, the https URL of RFC 8058's one-click POST."""
    cv.template(value, UNSUBSCRIBE_PLACEHOLDERS, required=("recipient_id",))
    cv.url(value.format(**UNSUBSCRIBE_PLACEHOLDERS), ("https",))
    return value


# One line of visible text is every string setting's default (see _Model); these add more.
Markdown = Annotated[str, cv.MULTILINE]
Address = Annotated[str, AfterValidator(cv.address)]
OptionalAddress = Annotated[str, AfterValidator(cv.optional_address)]
MailtoAddress = Annotated[str, AfterValidator(cv.mailto_address)]
Link = Annotated[str, AfterValidator(partial(cv.url, schemes=("https", "http")))]
HttpsUrl = Annotated[str, AfterValidator(partial(cv.url, schemes=("https",)))]
OptionalHttpsUrl = Annotated[
    str, AfterValidator(lambda v: v and cv.url(v, ("https",), example="example.org/photo.jpg"))
]
BaseUrl = Annotated[str, AfterValidator(partial(cv.url, schemes=("https",), extent="base"))]
ApiHost = Annotated[
    str,
    AfterValidator(
        partial(cv.url, schemes=("https",), extent="origin", example="api.sendgrid.com")
    ),
]
EditionId = Annotated[str, AfterValidator(_edition_id)]
TimeZone = Annotated[str, AfterValidator(cv.timezone)]
Language = Annotated[str, AfterValidator(cv.language)]
Colour = Annotated[str, AfterValidator(cv.colour)]
Subject = Annotated[str, AfterValidator(partial(cv.template, allowed=SUBJECT_PLACEHOLDERS))]
Greeting = Annotated[str, AfterValidator(partial(cv.template, allowed=GREETING_PLACEHOLDERS))]
UnsubscribeUrl = Annotated[str, AfterValidator(_unsubscribe_url)]
Category = Annotated[str, Field(min_length=1, max_length=255)]
CronValue = str | int


class _Model(BaseModel):
    """Strict: TOML has real types, so "1000" for a number is a mistake, not a number."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _visible_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Every string setting, whatever its field, may end up in a header or a URL."""
        assert info.field_name is not None
        multiline = cv.MULTILINE in cls.model_fields[info.field_name].metadata
        for what, text in cv.strings_in(value):
            cv.refuse_invisible(text, multiline=multiline, what=what)
        return value


class Logo(_Model):
    """An image the mail client fetches: https, because many clients block plain http ones."""

    url: HttpsUrl = Field(description="Address of the logo (https; PNG or JPEG, not SVG).")
    alt: str = Field(
        min_length=1, description="Words shown instead when images are off (the alliance's name)."
    )
    width: int = Field(
        ge=16, le=552, description="Width in pixels the logo is shown at (the file may be 2x)."
    )


class Newsletter(_Model):
    name: str = Field(description="Newsletter name shown in the header and subject.")
    organisation: str = Field(description="Who sends it, shown in the footer.")
    tagline: str = Field("", description="One line under the name.")
    language: Language = Field("en", description="BCP 47 language of the email (the html lang).")
    timezone: TimeZone = Field(
        "Europe/Brussels", description="Time zone for dates and the schedule."
    )
    first_edition: EditionId = Field(
        description="YYYY-MM of edition No. 1; later numbers count months from it."
    )
    website: Link = Field(description="The organisation's site (http or https).")
    web_base_url: BaseUrl = Field(
        description="Where the web archive is published (https); 'view in browser' links "
        "point here."
    )
    postal_address: str = Field("", description="Sender's postal address for the footer.")
    why: str = Field(description="Why the partner gets this email (footer).")
    subject: Subject = Field(
        "{name} No. {number} – {month}",
        description="Subject template: {name}, {number}, {month}, {title}.",
    )
    greeting: Greeting = Field(
        "Dear {first_name},", description="Greeting; {first_name} per partner."
    )
    greeting_fallback: str = Field("partner", description="Used when a first name is unknown.")
    accent_color: Colour = Field("#0b4f8a", description="Colour of headings and buttons.")
    logo: Logo | None = Field(None, description="The alliance's logo at the top of the email.")


class Sender(_Model):
    from_email: Address = Field(description="From address (a verified sender in SendGrid).")
    from_name: str = Field(description="From name.")
    reply_to: OptionalAddress = Field("", description="Reply-To address.")
    unsubscribe_url: UnsubscribeUrl = Field(
        description="One-click unsubscribe URL (https); {recipient_id} (required) and "
        "{edition} are filled in."
    )
    unsubscribe_mailto: MailtoAddress = Field(
        "", description="Address for mailto: List-Unsubscribe."
    )


class Section(_Model):
    key: str = Field(description="What item files write in `section:`.")
    title: str = Field(description="Heading shown in the email.")
    intro: str = Field("", description="Optional line under the heading.")


class EditionSettings(_Model):
    title: str = Field("", description="The edition's headline.")
    preheader: str = Field("", description="Preview text shown after the subject in inboxes.")
    editorial: Markdown = Field("", description="Opening paragraphs (Markdown).")
    closing: Markdown = Field(
        "", description="Closing paragraph before the call to action (Markdown)."
    )
    image: OptionalHttpsUrl = Field(
        "", description="Optional picture under the headline (https; 1200 px wide is ample)."
    )
    image_alt: str = Field("", description="What the picture shows; required with `image`.")

    @model_validator(mode="after")
    def _image_has_alt(self) -> EditionSettings:
        """A picture without words is a blank box with images off and silent to a reader."""
        if self.image and not self.image_alt.strip():
            raise ValueError("'image' needs 'image_alt': write what the picture shows")
        return self


class CallToAction(_Model):
    text: str = Field(description="The question that closes the email.")
    link_text: str = Field(description="The link's words.")
    url: Link = Field(description="Where the link goes (http or https).")


class Audience(_Model):
    segments: tuple[str, ...] = Field(
        (), strict=False, description="Segments that receive it; empty = all."
    )


class Build(_Model):
    size_warn_kb: int = Field(90, ge=1, description="Warn when the HTML passes this size (KB).")
    size_limit_kb: int = Field(102, ge=1, description="Gmail clips above this; the build fails.")


class SendGrid(_Model):
    host: ApiHost = Field(
        "https://api.sendgrid.com", description="API host (https); EU: api.eu.sendgrid.com."
    )
    batch_size: int = Field(1000, ge=1, le=1000, description="Recipients per request (<= 1000).")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for an answer.")
    retries: int = Field(4, ge=0, le=10, description="Retries on 5xx/connection errors.")
    max_rate_limit_wait: float = Field(120.0, ge=0, description="Longest wait on a 429 (s).")
    concurrency: int = Field(
        4, ge=1, le=16, description="Batches in flight together (1: one request at a time)."
    )
    asm_group_id: int | None = Field(None, ge=1, description="Unsubscribe group id, if any.")
    sandbox: bool = Field(False, description="Sandbox mode: SendGrid validates, delivers nothing.")
    categories: tuple[Category, ...] = Field(
        (),
        strict=False,
        max_length=8,
        description="Extra categories for statistics (at most 8; SendGrid takes 10 with "
        "newsflash's own two).",
    )


class Job(_Model):
    enabled: bool = Field(True, description="Set false to keep the entry but not run it.")
    year: CronValue | None = None
    month: CronValue | None = None
    day: CronValue | None = None
    week: CronValue | None = None
    day_of_week: CronValue | None = None
    hour: CronValue | None = None
    minute: CronValue | None = 0
    second: CronValue | None = 0


class Schedule(_Model):
    grace_hours: float = Field(6.0, ge=0, description="How late a missed job may still run.")
    require_approval: bool = Field(True, description="Send only an approved, unchanged edition.")
    reviewers: tuple[Address, ...] = Field((), strict=False, description="Who gets the proof.")
    contributors: tuple[Address, ...] = Field(
        (), strict=False, description="Who gets the call for items."
    )
    deadline_days: int = Field(
        7, ge=0, description="Reminder states a deadline this many days before send."
    )
    reminder: Job | None = None
    proof: Job | None = None
    send: Job | None = None


class Serve(_Model):
    public_url: str = Field(
        "", description="Where partners reach `newsflash serve` (https); unsubscribe links use it."
    )
    webhook_max_age_seconds: int = Field(
        600, ge=1, description="Refuse a webhook request signed longer ago than this (replay)."
    )
    webhook_max_body_kb: int = Field(
        2048, ge=1, description="Refuse a webhook body over this size (KB) with 413."
    )

    @field_validator("public_url")
    @classmethod
    def _https_base(cls, v: str) -> str:
        """https only: mail clients send RFC 8058's one-click POST to https links alone."""
        return cv.url(v, ("https",), extent="base") if v else v


class Paths(_Model):
    submissions: str = "submissions"
    subscribers: str = "subscribers.csv"
    templates: str = "templates"
    build: str = "build"
    outbox: str = "outbox"
    state: str = "state"
    site: str = "site"


class ConfigModel(_Model):
    newsletter: Newsletter
    sender: Sender
    sections: tuple[Section, ...] = Field(min_length=1, strict=False)
    editions: dict[EditionId, EditionSettings] = Field(default_factory=dict)
    call_to_action: CallToAction | None = None
    audience: Audience = Audience()
    build: Build = Build()
    sendgrid: SendGrid = SendGrid()
    schedule: Schedule = Schedule()
    serve: Serve = Serve()
    paths: Paths = Paths()


@dataclass(frozen=True)
class Config:
    """The validated settings plus where they came from, so paths resolve next to the file."""

    path: Path
    model: ConfigModel
    sha256: str

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else (self.root / p)

    @property
    def submissions_dir(self) -> Path:
        return self.resolve(self.model.paths.submissions)

    @property
    def subscribers_path(self) -> Path:
        return self.resolve(self.model.paths.subscribers)

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.model.paths.templates)

    @property
    def build_dir(self) -> Path:
        return self.resolve(self.model.paths.build)

    @property
    def outbox_dir(self) -> Path:
        return self.resolve(self.model.paths.outbox)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.model.paths.state)

    @property
    def site_dir(self) -> Path:
        return self.resolve(self.model.paths.site)

    @property
    def section_keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.model.sections)

    def content_sha256(self, edition_id: str) -> str:
        """Hash of the settings that shape an edition's email, and only those.

        Approval refers to it through the manifest: retiming the schedule or changing the
        SendGrid host must not void an approval; changing the subject or the footer must.
        """
        m = self.model
        parts = {
            "newsletter": m.newsletter.model_dump(mode="json"),
            "sender": m.sender.model_dump(mode="json"),
            "sections": [s.model_dump(mode="json") for s in m.sections],
            "edition": self.edition_settings(edition_id).model_dump(mode="json"),
            "call_to_action": m.call_to_action.model_dump(mode="json")
            if m.call_to_action
            else None,
            "build": m.build.model_dump(mode="json"),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def edition_settings(self, edition_id: str) -> EditionSettings:
        return self.model.editions.get(edition_id, EditionSettings())


# What to write instead, by pydantic's error type; the rest keep pydantic's own words.
_HINTS = {
    "string_type": "write text in double quotes",
    "int_type": "write a whole number without quotes",
    "float_type": "write a number without quotes",
    "bool_type": "write true or false without quotes",
    "tuple_type": 'write a list in brackets, e.g. ["a", "b"]',
    "dict_type": "write it as a table",
    "model_type": "write it as a table",
}


def _members(annotation: Any) -> tuple[Any, ...]:
    """The types an annotation may hold: a union's members (None aside), else itself."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _walk(loc: tuple[int | str, ...]) -> tuple[str, Any]:
    """The key as the file writes it (`sections[4].title`, `editions."2022-02".title`) and the
    type found there; union tags and pydantic's markers in `loc` are not keys, so they drop."""
    key = ""
    node: Any = ConfigModel
    for part in loc:
        models = [m for m in _members(node) if isinstance(m, type) and issubclass(m, BaseModel)]
        origin = typing.get_origin(_members(node)[0])
        if isinstance(part, int) and origin is tuple:
            key, node = f"{key}[{part + 1}]", typing.get_args(_members(node)[0])[0]
        elif origin is dict and isinstance(part, str) and part != "[key]":
            key, node = f'{key}."{part}"', typing.get_args(_members(node)[0])[1]
        elif models and isinstance(part, str) and part in models[0].model_fields:
            key = f"{key}.{part}" if key else part
            node = models[0].model_fields[part].annotation
    return key, node


def _known_keys(node: Any) -> list[str]:
    models = [m for m in _members(node) if isinstance(m, type) and issubclass(m, BaseModel)]
    return list(models[0].model_fields) if models else []


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(err: ErrorDetails) -> tuple[str, str]:
    """(key, what is wrong and what to write) for one pydantic error."""
    loc = tuple(err["loc"])
    key, _ = _walk(loc)
    if err["type"] == "extra_forbidden":
        table, node = _walk(loc[:-1])
        key = f"{table}.{loc[-1]}" if table else str(loc[-1])
        hint = difflib.get_close_matches(str(loc[-1]), _known_keys(node), n=1)
        mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        return key, f"unknown key '{key}'{mean}; remove it or correct its name."
    if err["type"] == "missing":
        return key, f"missing key '{key}'; add it (see README, 'config.toml')."
    if loc and loc[-1] == "[key]":
        key = f"[{key}]"
    what = _HINTS.get(err["type"]) or err["msg"].removeprefix("Value error, ")
    return key, f"'{key}': {what}"


def _messages(e: ValidationError, path: Path) -> list[str]:
    """One line per key: a union's members each refuse a value, and that is one mistake."""
    by_key: dict[str, list[str]] = {}
    inputs: dict[str, Any] = {}
    for err in e.errors():
        key, message = _problem(err)
        if message not in by_key.setdefault(key, []):
            by_key[key].append(message)
        inputs.setdefault(key, err.get("input"))
    lines: list[str] = []
    for key, messages in by_key.items():
        if messages[0].startswith(("unknown key", "missing key")):
            lines.extend(f"{path}: {m}" for m in messages)
            continue
        what = " or ".join(m.removeprefix(f"'{key}': ") for m in messages)
        lines.append(f"{path}: '{key}': {what} (got {_shown(inputs[key])}).")
    return lines


def _looks_secret(name: str) -> bool:
    name = name.lower()
    return name in SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def _raw_key(loc: tuple[int | str, ...]) -> str:
    """A key of the raw file as the user writes it; a name that is not an identifier, such
    as an edition's, in quotes (`editions."2022-02".closing`)."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part + 1}]"
        else:
            name = part if part.isidentifier() else f'"{part}"'
            key = f"{key}.{name}" if key else name
    return key


def _find_secret(data: Any, loc: tuple[int | str, ...] = ()) -> str | None:
    """Where a key named like a secret, or a value holding a SendGrid key, is in the file."""
    if isinstance(data, dict):
        for k, v in data.items():
            if _looks_secret(str(k)):
                return f"key '{_raw_key((*loc, k))}' looks like a secret"
            found = _find_secret(v, (*loc, k))
            if found:
                return found
    elif isinstance(data, list):
        for n, v in enumerate(data):
            found = _find_secret(v, (*loc, n))
            if found:
                return found
    elif isinstance(data, str) and _SENDGRID_KEY.search(data):
        return f"'{_raw_key(loc)}' holds what looks like a SendGrid API key"
    return None


def parse_config(text: str, path: Path) -> Config:
    """Validate config text; pure, so tests need no files."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}. Check quotes and brackets there.") from e
    secret = _find_secret(data)
    if secret:
        raise ConfigError(
            f"{path}: {secret}. Secrets never go in config.toml: "
            "remove it and set SENDGRID_API_KEY in the environment instead."
        )
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as e:
        raise ConfigError("\n".join(_messages(e, path))) from None
    keys = [s.key for s in model.sections]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(
            f"{path}: section key(s) {', '.join(dupes)} appear twice in [[sections]]."
        )
    return Config(path=path, model=model, sha256=hashlib.sha256(text.encode()).hexdigest())


def load_config(path: Path) -> Config:
    """Read and validate config.toml; the error says what to do when it is not there."""
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such config file. Run newsflash in a folder with config.toml, "
            "or pass --config PATH."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read it ({e}); save it as UTF-8.") from e
    return parse_config(text, path)
