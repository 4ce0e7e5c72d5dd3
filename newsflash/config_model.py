"""config.toml's shape: every table and key, its type, default and the rule it must meet.

Apart from config.py (which loads the file and words what is wrong with it) so the model reads
as the reference it is: `newsflash init` writes its commented config.toml from these classes,
and every description here is what a secretariat sees in it and in error messages.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from newsflash import config_values as cv
from newsflash.errors import NewsflashError
from newsflash.months import parse_edition_id

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
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(minute|hour|day|week)s?")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def _duration(value: str) -> str:
    """A span written for people ("3 days", "36 hours"), so config.toml reads as it means."""
    if not _DURATION.fullmatch(value.strip().lower()):
        raise ValueError(
            "is not a duration; write a number and a unit: minutes, hours, days or weeks, "
            'e.g. "3 days"'
        )
    return value


def duration_seconds(value: str) -> float:
    """Seconds in a duration `_duration` accepted."""
    m = _DURATION.fullmatch(value.strip().lower())
    assert m is not None, value
    return float(m.group(1)) * _SECONDS[m.group(2)]


Duration = Annotated[str, AfterValidator(_duration)]


class _Model(BaseModel):
    """Strict: TOML has real types, so "1000" for a number is a mistake, not a number.

    `defer_build`: a class's validator and serializer are built on its first use, not when
    the module is imported, so a command whose config comes from the config cache
    (config_cache.py) builds none (they were a fifth of the config's start-up). For the same
    reason ConfigModel's table defaults are factories: a default instance made in the class
    body would build its class's schema at import."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

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
    resend_uncertain_after_minutes: float = Field(
        60.0,
        ge=0,
        description="--resend-uncertain resends a batch only this long after it went out, so "
        "SendGrid's events can first settle who got it.",
    )
    sync_before_send: bool = Field(
        True, description="Pull SendGrid's suppression lists before each send with a key."
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


class ReportJob(Job):
    """The report to the reviewers and the click notes to the contributors, once per edition.

    The cron fields say when the job looks (default: every hour, on the hour); it reports the
    last sent edition once `after_send` has passed since its send began."""

    after_send: Duration = Field("3 days", description="How long after the send to report.")


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
    report: ReportJob | None = None


class Links(_Model):
    """`newsflash check --links` and the proof's link check."""

    timeout: float = Field(10.0, gt=0, le=120, description="Seconds one link may take, in all.")
    concurrency: int = Field(4, ge=1, le=32, description="Links fetched at a time.")
    cache_hours: float = Field(
        24.0, ge=0, description="Reuse a link found working this recently (0: always fetch)."
    )
    in_proof: bool = Field(True, description="The proof job checks links and mails dead ones.")


class Receipts(_Model):
    """What each item's contact is told after a send: no partner's name or address, counts."""

    enabled: bool = Field(True, description="Send contributors their receipts and click notes.")
    exclude: tuple[Address, ...] = Field(
        (), strict=False, description="Contacts who get no receipt or click note."
    )


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
    audience: Audience = Field(default_factory=Audience)
    build: Build = Field(default_factory=Build)
    sendgrid: SendGrid = Field(default_factory=SendGrid)
    schedule: Schedule = Field(default_factory=Schedule)
    serve: Serve = Field(default_factory=Serve)
    links: Links = Field(default_factory=Links)
    receipts: Receipts = Field(default_factory=Receipts)
    paths: Paths = Field(default_factory=Paths)
