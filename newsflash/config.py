"""config.toml, validated on load into frozen, typed objects (config_loaded's: plain classes).

Every field carries its own description, so `docs` and error messages can quote it. An unknown
key or a wrong type is an error naming the key and the file; a secret found in the file is
refused, because config.toml is meant to be committed and shared.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails

from newsflash.config_loaded import (
    CLASSES,
    Config,
    EditionSettings,
    Job,
    Section,
    Settings,
    read_config_text,
)
from newsflash.config_model import (
    GREETING_PLACEHOLDERS,
    SUBJECT_PLACEHOLDERS,
    UNSUBSCRIBE_PLACEHOLDERS,
    ConfigModel,
    duration_seconds,
)
from newsflash.errors import ConfigError

__all__ = [
    "GREETING_PLACEHOLDERS",
    "SECRET_KEYS",
    "SUBJECT_PLACEHOLDERS",
    "UNSUBSCRIBE_PLACEHOLDERS",
    "Config",
    "ConfigModel",
    "EditionSettings",
    "Job",
    "Section",
    "Settings",
    "duration_seconds",
    "load_config",
    "parse_config",
    "read_config_text",
]

SECRET_KEYS = {"api_key", "sendgrid_api_key", "apikey", "password", "secret", "token"}
_SECRET_SUFFIXES = ("_key", "_token", "_secret", "_password", "apikey")
# A SendGrid API key: "SG." then two base64url parts; found anywhere in a value.
_SENDGRID_KEY = re.compile(r"SG\.[\w-]{16,}\.[\w-]{16,}")


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
    settings = _loaded(model)
    assert isinstance(settings, Settings)
    return Config(path=path, model=settings, sha256=hashlib.sha256(text.encode()).hexdigest())


def _loaded(value: Any) -> Any:
    """The validated model as config_loaded's plain classes (each named as its model, the
    root Settings), values as validation left them: a Config built fresh and one read from
    the config cache are the same objects."""
    if isinstance(value, BaseModel):
        name = "Settings" if type(value) is ConfigModel else type(value).__name__
        fields = {f: _loaded(getattr(value, f)) for f in type(value).model_fields}
        return CLASSES[name](**fields)
    if isinstance(value, tuple):
        return tuple(_loaded(v) for v in value)
    if isinstance(value, dict):
        return {k: _loaded(v) for k, v in value.items()}
    return value


def load_config(path: Path) -> Config:
    """Read and validate config.toml."""
    path = path.resolve()
    return parse_config(read_config_text(path), path)
