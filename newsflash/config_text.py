"""A new workspace's config.toml, written from the config model itself so it cannot drift.

Every key the model knows appears, with its own description as the comment above it. Keys a
newsletter must set are written with example values; the rest are commented out with their
default (``#key = value``, no space after ``#``, so uncommenting one is deleting one character),
and the descriptions are ``# text`` comments.
"""

from __future__ import annotations

import textwrap
import types
import typing
from collections.abc import Mapping
from typing import Any

import tomlkit
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from newsflash.config_edit import edition_table
from newsflash.config_model import ConfigModel, EditionSettings, Job, Section

HEADER = """\
# newsflash configuration: everything the secretariat sets. No secrets here: the SendGrid key
# comes from the environment (SENDGRID_API_KEY). Paths are relative to this file's folder.
# A line starting with `#key =` is a setting left at its default: delete the `#` to change it.
"""

# What a new newsletter writes where the model has no default, or where its default is not
# what a newcomer should see; every value here passes the model's own validation.
EXAMPLES: dict[str, dict[str, Any]] = {
    "newsletter": {
        "name": "Our Newsflash",
        "organisation": "Our Alliance",
        "website": "https://example.org",
        "web_base_url": "https://newsletter.example.org",
        "why": "You receive this email because your organisation is a partner of Our Alliance.",
        "logo": {"url": "https://example.org/logo.png", "alt": "Our Alliance", "width": 240},
    },
    "sender": {
        "from_email": "newsletter@example.org",
        "from_name": "The Secretariat",
        "unsubscribe_url": "https://example.org/unsubscribe?r={recipient_id}&e={edition}",
    },
    "sections": {"key": "news", "title": "News", "intro": "What happened this month"},
    "call_to_action": {
        "text": "Would you like to contribute?",
        "link_text": "Write to the secretariat",
        "url": "https://example.org/contact",
    },
    "sendgrid": {"asm_group_id": 12345},
    "schedule": {"reviewers": ["secretariat@example.org"], "contributors": []},
    "job": {"year": "*", "month": "*", "week": "*", "day_of_week": "*"},
}
# Set (not commented out) in a new workspace: the keys it cannot do without.
WRITTEN = {
    "newsletter": ("name", "organisation", "first_edition", "website", "web_base_url", "why"),
    "sender": ("from_email", "from_name", "unsubscribe_url"),
    "sections": ("key", "title", "intro"),
}
# The calendar a new workspace starts with: the send is what names the coming edition.
JOBS: dict[str, tuple[bool, dict[str, Any]]] = {
    "reminder": (False, {"day": "3rd tue", "hour": 10}),
    "proof": (False, {"day": "last thu", "hour": 10}),
    "send": (True, {"day": "1st tue", "hour": 9}),
    "report": (False, {"after_send": "3 days", "day": "*", "hour": "*"}),
}
JOB_NOTES = {
    "reminder": "The call for items to [schedule] contributors: uncomment to run it.",
    "proof": "The proof to [schedule] reviewers: uncomment to run it.",
    "send": "The send: the first Tuesday of the month at 09:00; it names the coming edition.",
    "report": "The report to [schedule] reviewers, and click notes to the items' contacts,"
    " once `after_send` has passed since the send began: uncomment to run it.",
}
JOB_NOTE = (
    "Cron fields as APScheduler's CronTrigger reads them (day, hour, minute, day_of_week ...),"
    " in the newsletter's time zone."
)

SECTIONS_NOTE = (
    "Sections appear in this order, one [[sections]] table each; item files name one by its key."
)
EDITIONS_NOTE = (
    "One table per edition; `newsflash edition new YYYY-MM` adds the next. Without one, the "
    "subject and headline fall back to the newsletter's name and the month."
)
PATHS_NOTE = (
    "Where things are, relative to this file. templates/ is optional: a file there overrides "
    "newsflash's own template of that name (`newsflash init --templates` copies them)."
)


def _value(value: Any) -> str:
    """One value in TOML's own spelling (tomlkit's, so quotes and escapes are right)."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return str(table.as_string())
    return str(tomlkit.item(value).as_string())


def _is_model(annotation: Any) -> type[BaseModel] | None:
    """The model class a field holds, also through `X | None`; None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for member in typing.get_args(annotation):
            found = _is_model(member)
            if found is not None:
                return found
    return None


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def _key_lines(
    name: str, field: FieldInfo, written: Mapping[str, Any], examples: Mapping[str, Any]
) -> list[str]:
    """The description, then the key set or commented out (with an example where the
    default is None, since TOML has no null)."""
    lines = textwrap.wrap(field.description or "", 95, initial_indent="# ", subsequent_indent="# ")
    if name in written:
        return [*lines, f"{name} = {_value(written[name])}"]
    value = examples[name] if name in examples else _default(field)
    return [*lines, f"#{name} = {_value(value)}"]


def _table(
    header: str,
    model: type[BaseModel],
    written: Mapping[str, Any],
    examples: Mapping[str, Any],
    *,
    commented: bool = False,
    note: str = "",
) -> list[str]:
    """One table: its header, then every plain key; nested tables are the caller's."""
    mark = "#" if commented else ""
    lines = ["", f"{mark}[{header}]" if not header.startswith("[") else f"{mark}{header}"]
    if note:
        lines += textwrap.wrap(note, 95, initial_indent="# ", subsequent_indent="# ")
    for name, field in model.model_fields.items():
        if _is_model(field.annotation) is not None and name not in examples:
            continue  # a table of its own, which the caller writes
        key = _key_lines(name, field, written, examples)
        lines += [f"#{line}" if commented and not line.startswith("#") else line for line in key]
    return lines


def _job_model(schedule: type[BaseModel], name: str) -> type[BaseModel]:
    """The model of [schedule.NAME] as the schedule declares it (`Job | None` -> Job), so a
    job with settings of its own (the report's `after_send`) is written with them."""
    return _is_model(schedule.model_fields[name].annotation) or Job


def _schedule(model: type[BaseModel]) -> list[str]:
    lines = _table("schedule", model, {}, EXAMPLES["schedule"])
    for name, (enabled, fields) in JOBS.items():
        lines += _table(
            f"schedule.{name}",
            _job_model(model, name),
            {"enabled": True, **fields} if enabled else {},
            {**EXAMPLES["job"], **fields},
            commented=not enabled,
            note=JOB_NOTES[name] + " " + JOB_NOTE,
        )
    return lines


def config_text(first_edition: str) -> str:
    """The whole commented config.toml of a new workspace whose edition No. 1 is
    `first_edition`; it validates as it is, and so does every commented-out key."""
    nl = {**EXAMPLES["newsletter"], "first_edition": first_edition}
    lines = [HEADER.rstrip("\n")]
    for name, field in ConfigModel.model_fields.items():
        model = _is_model(field.annotation)
        if name == "schedule" and model is not None:
            lines += _schedule(model)
        elif name == "sections":
            lines += _table("[[sections]]", Section, EXAMPLES["sections"], {}, note=SECTIONS_NOTE)
        elif name == "editions":
            example = edition_table("The headline of edition No. 1")
            header = f'editions."{first_edition}"'
            lines += _table(
                header, EditionSettings, {}, example, commented=True, note=EDITIONS_NOTE
            )
        elif name == "call_to_action" and model is not None:
            lines += _table(name, model, {}, EXAMPLES[name], commented=True)
        elif name == "paths" and model is not None:
            lines += _table(name, model, {}, {}, note=PATHS_NOTE)
        elif model is not None:
            written = nl if name == "newsletter" else EXAMPLES.get(name, {})
            keep = WRITTEN.get(name, ())
            chosen = {k: v for k, v in written.items() if k in keep}
            lines += _table(name, model, chosen, {**EXAMPLES.get(name, {}), **written})
    return "\n".join(lines) + "\n"
