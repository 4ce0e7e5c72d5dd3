"""config.toml, validated on load into frozen, typed objects.

Every field carries its own description, so `docs` and error messages can quote it. An unknown
key or a wrong type is an error naming the key and the file; a secret found in the file is
refused, because config.toml is meant to be committed and shared.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newsflash.errors import ConfigError, NewsflashError
from newsflash.months import parse_edition_id

SECRET_KEYS = {"api_key", "sendgrid_api_key", "apikey", "password", "secret", "token"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Newsletter(_Model):
    name: str = Field(description="Newsletter name shown in the header and subject.")
    organisation: str = Field(description="Who sends it, shown in the footer.")
    tagline: str = Field("", description="One line under the name.")
    language: str = Field("en", description="BCP 47 language of the email (the html lang).")
    timezone: str = Field("Europe/Brussels", description="Time zone for dates and the schedule.")
    first_edition: str = Field(
        description="YYYY-MM of edition No. 1; later numbers count months from it."
    )
    website: str = Field(description="The organisation's site (https).")
    web_base_url: str = Field(
        description="Where the web archive is published; 'view in browser' links point here."
    )
    postal_address: str = Field("", description="Sender's postal address for the footer.")
    why: str = Field(description="Why the partner gets this email (footer).")
    subject: str = Field(
        "{name} No. {number} – {month}",
        description="Subject template: {name}, {number}, {month}, {title}.",
    )
    greeting: str = Field("Dear {first_name},", description="Greeting; {first_name} per partner.")
    greeting_fallback: str = Field("partner", description="Used when a first name is unknown.")
    accent_color: str = Field("#0b4f8a", description="Colour of headings and buttons.")

    @field_validator("first_edition")
    @classmethod
    def _edition_id(cls, v: str) -> str:
        try:
            parse_edition_id(v)
        except NewsflashError as e:
            raise ValueError(str(e)) from None
        return v


class Sender(_Model):
    from_email: str = Field(description="From address (a verified sender in SendGrid).")
    from_name: str = Field(description="From name.")
    reply_to: str = Field("", description="Reply-To address.")
    unsubscribe_url: str = Field(
        description="One-click unsubscribe URL; {recipient_id} and {edition} are filled in."
    )
    unsubscribe_mailto: str = Field("", description="Address for mailto: List-Unsubscribe.")


class Section(_Model):
    key: str = Field(description="What item files write in `section:`.")
    title: str = Field(description="Heading shown in the email.")
    intro: str = Field("", description="Optional line under the heading.")


class EditionSettings(_Model):
    title: str = Field("", description="The edition's headline.")
    preheader: str = Field("", description="Preview text shown after the subject in inboxes.")
    editorial: str = Field("", description="Opening paragraphs (Markdown).")
    closing: str = Field("", description="Closing paragraph before the call to action (Markdown).")


class CallToAction(_Model):
    text: str = Field(description="The question that closes the email.")
    link_text: str = Field(description="The link's words.")
    url: str = Field(description="Where the link goes (https).")


class Audience(_Model):
    segments: tuple[str, ...] = Field((), description="Segments that receive it; empty = all.")


class Build(_Model):
    size_warn_kb: int = Field(90, description="Warn when the HTML passes this size (KB).")
    size_limit_kb: int = Field(102, description="Gmail clips above this; the build fails.")


class SendGrid(_Model):
    host: str = Field("https://api.sendgrid.com", description="API host; EU: api.eu.sendgrid.com.")
    batch_size: int = Field(1000, ge=1, le=1000, description="Recipients per request (<= 1000).")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for an answer.")
    retries: int = Field(4, ge=0, le=10, description="Retries on 5xx/connection errors.")
    max_rate_limit_wait: float = Field(120.0, ge=0, description="Longest wait on a 429 (s).")
    asm_group_id: int | None = Field(None, description="Unsubscribe group id, if any.")
    sandbox: bool = Field(False, description="Sandbox mode: SendGrid validates, delivers nothing.")
    categories: tuple[str, ...] = Field((), description="Extra categories for statistics.")


class Job(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = Field(True, description="Set false to keep the entry but not run it.")
    year: str | int | None = None
    month: str | int | None = None
    day: str | int | None = None
    week: str | int | None = None
    day_of_week: str | int | None = None
    hour: str | int | None = None
    minute: str | int | None = 0
    second: str | int | None = 0


class Schedule(_Model):
    grace_hours: float = Field(6.0, ge=0, description="How late a missed job may still run.")
    require_approval: bool = Field(True, description="Send only an approved, unchanged edition.")
    reviewers: tuple[str, ...] = Field((), description="Who gets the proof.")
    contributors: tuple[str, ...] = Field((), description="Who gets the call for items.")
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
    def _http_url(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (where the reverse proxy serves it)")
        return v


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
    sections: tuple[Section, ...] = Field(min_length=1)
    editions: dict[str, EditionSettings] = Field(default_factory=dict)
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


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p + 1}]" if parts else f"[{p + 1}]"]
        else:
            parts.append(str(p))
    return ".".join(parts)


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The valid keys at the table where an unknown key was found, for a 'did you mean'."""
    model: Any = ConfigModel
    for p in loc[:-1]:
        if isinstance(p, int) or model is None:
            continue
        field = model.model_fields.get(p)
        if field is None:
            return []
        ann = field.annotation
        model = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
                break
    return list(model.model_fields) if model is not None else []


def _find_secret(data: Any, where: str = "") -> str | None:
    """A key named like a secret anywhere in the file, or a value that is a SendGrid key."""
    if isinstance(data, dict):
        for k, v in data.items():
            if str(k).lower() in SECRET_KEYS:
                return f"{where}{k}"
            found = _find_secret(v, f"{where}{k}.")
            if found:
                return found
    elif isinstance(data, list):
        for n, v in enumerate(data):
            found = _find_secret(v, f"{where.rstrip('.')}[{n + 1}].")
            if found:
                return found
    elif isinstance(data, str) and data.startswith("SG.") and len(data) > 40:
        return where.rstrip(".")
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
            f"{path}: key '{secret}' looks like a secret. Secrets never go in config.toml: "
            "remove it and set SENDGRID_API_KEY in the environment instead."
        )
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = tuple(err["loc"])
            key = _key_path(loc)
            if err["type"] == "extra_forbidden":
                hint = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                lines.append(f"{path}: unknown key '{key}'{extra}; remove it or correct its name.")
            elif err["type"] == "missing":
                lines.append(f"{path}: missing key '{key}'; add it (see README, 'config.toml').")
            else:
                lines.append(f"{path}: '{key}': {err['msg']} (got {err.get('input')!r}).")
        raise ConfigError("\n".join(lines)) from None
    keys = [s.key for s in model.sections]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(
            f"{path}: section key(s) {', '.join(dupes)} appear twice in [[sections]]."
        )
    for eid in model.editions:
        try:
            parse_edition_id(eid)
        except Exception as e:
            raise ConfigError(f'{path}: [editions."{eid}"]: {e}') from None
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
