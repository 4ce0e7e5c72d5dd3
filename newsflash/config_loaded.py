"""config.toml's settings once validated: plain frozen tables, and the Config that holds them.

The rules a file must meet live in config_model.py (pydantic); what a command reads after they
held lives here, apart, so a command whose config comes from the config cache (config_cache.py)
imports neither pydantic nor the models: those were most of a cold build's start-up (about
0.1 s of 0.3). Each class here has the fields of the model of the same name, in its order, with
its types and defaults (ConfigModel's is Settings); config.py validates with the models and
builds these from the result, and tests/test_config_loaded.py holds the two field by field.
Each is a Table (settings_table.py): a frozen, keyword-only dataclass in all but its cost.

"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsflash.errors import ConfigError, EditionIdError
from newsflash.months import edition_number
from newsflash.settings_table import Table, as_dict

CronValue = str | int
# ASCII digits only: `\d` (and int()) would take full-width ones, "２０２２-03", as 2022-03.
_STRICT_ID = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class Logo(Table):
    url: str
    alt: str
    width: int


class Newsletter(Table):
    name: str
    organisation: str
    tagline: str = ""
    language: str = "en"
    timezone: str = "Europe/Brussels"
    first_edition: str
    website: str
    web_base_url: str
    postal_address: str = ""
    why: str
    subject: str = "{name} No. {number} – {month}"
    greeting: str = "Dear {first_name},"
    greeting_fallback: str = "partner"
    accent_color: str = "#0b4f8a"
    logo: Logo | None = None


class Sender(Table):
    from_email: str
    from_name: str
    reply_to: str = ""
    unsubscribe_url: str
    unsubscribe_mailto: str = ""


class Section(Table):
    key: str
    title: str
    intro: str = ""


class EditionSettings(Table):
    title: str = ""
    preheader: str = ""
    editorial: str = ""
    closing: str = ""
    image: str = ""
    image_alt: str = ""


class CallToAction(Table):
    text: str
    link_text: str
    url: str


class Audience(Table):
    segments: tuple[str, ...] = ()


class Build(Table):
    size_warn_kb: int = 90
    size_limit_kb: int = 102


class SendGrid(Table):
    host: str = "https://api.sendgrid.com"
    batch_size: int = 1000
    timeout: float = 30.0
    retries: int = 4
    max_rate_limit_wait: float = 120.0
    concurrency: int = 4
    resend_uncertain_after_minutes: float = 60.0
    sync_before_send: bool = True
    asm_group_id: int | None = None
    sandbox: bool = False
    categories: tuple[str, ...] = ()


class Job(Table):
    enabled: bool = True
    year: CronValue | None = None
    month: CronValue | None = None
    day: CronValue | None = None
    week: CronValue | None = None
    day_of_week: CronValue | None = None
    hour: CronValue | None = None
    minute: CronValue | None = 0
    second: CronValue | None = 0


class ReportJob(Job):
    after_send: str = "3 days"


class Schedule(Table):
    grace_hours: float = 6.0
    require_approval: bool = True
    reviewers: tuple[str, ...] = ()
    contributors: tuple[str, ...] = ()
    deadline_days: int = 7
    reminder: Job | None = None
    proof: Job | None = None
    send: Job | None = None
    report: ReportJob | None = None


class Links(Table):
    timeout: float = 10.0
    concurrency: int = 4
    cache_hours: float = 24.0
    in_proof: bool = True


class Receipts(Table):
    enabled: bool = True
    exclude: tuple[str, ...] = ()


class Serve(Table):
    public_url: str = ""
    webhook_max_age_seconds: int = 600
    webhook_max_body_kb: int = 2048


class Paths(Table):
    submissions: str = "submissions"
    subscribers: str = "subscribers.csv"
    templates: str = "templates"
    build: str = "build"
    outbox: str = "outbox"
    state: str = "state"
    site: str = "site"


class Settings(Table):
    """The whole file (config_model.ConfigModel's fields)."""

    newsletter: Newsletter
    sender: Sender
    sections: tuple[Section, ...]
    editions: dict[str, EditionSettings] = field(default_factory=dict)
    call_to_action: CallToAction | None = None
    audience: Audience = field(default_factory=Audience)
    build: Build = field(default_factory=Build)
    sendgrid: SendGrid = field(default_factory=SendGrid)
    schedule: Schedule = field(default_factory=Schedule)
    serve: Serve = field(default_factory=Serve)
    links: Links = field(default_factory=Links)
    receipts: Receipts = field(default_factory=Receipts)
    paths: Paths = field(default_factory=Paths)


# Every settings class by name, as config.py builds them from the models of the same name.
CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Logo,
        Newsletter,
        Sender,
        Section,
        EditionSettings,
        CallToAction,
        Audience,
        Build,
        SendGrid,
        Job,
        ReportJob,
        Schedule,
        Links,
        Receipts,
        Serve,
        Paths,
        Settings,
    )
}


@dataclass(frozen=True)
class Config:
    """The validated settings plus where they came from, so paths resolve next to the file."""

    path: Path
    model: Settings
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
        SendGrid host must not void an approval; changing the subject, the footer or where
        the unsubscribe links point (`[serve] public_url`) must.
        """
        return _digest(self._content_parts(edition_id))

    def earlier_content_sha256s(self, edition_id: str) -> tuple[str, ...]:
        """The same settings hashed as earlier newsflash versions hashed them.

        A send an older newsflash started was frozen under one of these. When the settings
        it covered are unchanged, the edition is the same, and the secretariat cannot
        "restore" a hash formula: the resume must know the old hash for what it is.
        Before `[serve] public_url` joined the hash, it was the rest of the parts.
        """
        parts = self._content_parts(edition_id)
        return (_digest({k: v for k, v in parts.items() if k != "public_url"}),)

    def _content_parts(self, edition_id: str) -> dict[str, Any]:
        """Each table as pydantic's `model_dump(mode="json")` wrote it when these were models
        (every field, tables as objects, tuples as lists): the hashes of approved and frozen
        editions must not change with the classes."""
        m = self.model
        cta = m.call_to_action
        return {
            "newsletter": as_dict(m.newsletter),
            "sender": as_dict(m.sender),
            "sections": [as_dict(s) for s in m.sections],
            "edition": as_dict(self.edition_settings(edition_id)),
            "call_to_action": as_dict(cta) if cta else None,
            "build": as_dict(m.build),
            "public_url": m.serve.public_url,
        }

    def edition_settings(self, edition_id: str) -> EditionSettings:
        return self.model.editions.get(edition_id, EditionSettings())


def _digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def read_config_text(path: Path) -> str:
    """The text of config.toml at `path` (resolved), all parse_config reads of it; the error
    says what to do when it is not there or will not read."""
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such config file. Run newsflash in a folder with config.toml, "
            "or pass --config PATH."
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read it ({e}); save it as UTF-8.") from e


def checked_edition_id(config: Config, value: str) -> str:
    """`value` if it names an edition this newsletter can have (YYYY-MM, from No. 1 on);
    else one message that says how to write it."""
    if not _STRICT_ID.fullmatch(value):
        raise EditionIdError(f"{value!r} is not an edition; write YYYY-MM, e.g. 2022-02.")
    edition_number(value, config.model.newsletter.first_edition)  # refuses one before No. 1
    return value
