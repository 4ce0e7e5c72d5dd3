"""The loaded config (config_loaded.py) against the models that validate it (config_model.py):
the same classes, fields, types and defaults, and a Config that holds what validation gave,
so that nothing a command reads, nor any hash an approval or a send refers to, changed when
the settings stopped being pydantic models."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from pydantic import BaseModel

from newsflash import config_loaded, config_model
from newsflash.config import parse_config
from newsflash.settings_table import as_dict

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "config.toml").read_text(encoding="utf-8")
MODELS = {
    name: cls
    for name, cls in vars(config_model).items()
    if isinstance(cls, type)
    and issubclass(cls, BaseModel)
    and cls.__module__ == "newsflash.config_model"
    and not name.startswith("_")
}


def loaded_name(model: type[BaseModel]) -> str:
    return "Settings" if model is config_model.ConfigModel else model.__name__


def plain(annotation: Any) -> Any:
    """A model's annotation as the loaded class writes it: no pydantic metadata (Annotated),
    each model as its loaded class."""
    if typing.get_origin(annotation) is typing.Annotated:
        return plain(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return config_loaded.CLASSES[loaded_name(annotation)]
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.Union[tuple(plain(a) for a in args)]  # noqa: UP007 (built from a list)
    if args:
        origin = typing.get_origin(annotation)
        return origin[tuple(plain(a) for a in args)]
    return annotation


def loaded_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return config_loaded.CLASSES[loaded_name(type(value))](
            **{name: loaded_value(getattr(value, name)) for name in type(value).model_fields}
        )
    return value


def test_every_model_has_a_loaded_class_and_nothing_else_does() -> None:
    assert sorted(loaded_name(m) for m in MODELS.values()) == sorted(config_loaded.CLASSES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_loaded_class_has_its_models_fields_types_and_defaults_in_order(name: str) -> None:
    model = MODELS[name]
    cls = config_loaded.CLASSES[loaded_name(model)]
    assert list(cls.FIELDS) == list(model.model_fields)
    hints = typing.get_type_hints(cls)
    for name in cls.FIELDS:
        info = model.model_fields[name]
        assert hints[name] == plain(info.annotation), name
        if info.is_required():
            assert name not in cls.FACTORIES and not hasattr(cls, name), name
            continue
        default = loaded_value(info.get_default(call_default_factory=True))
        made = cls.FACTORIES[name]() if name in cls.FACTORIES else getattr(cls, name)
        assert made == default and type(made) is type(default), name


def full_config() -> str:
    """The sample with the optional keys it leaves out set too."""
    data = tomllib.loads(SAMPLE)
    data["editions"]["2022-03"] = {
        "title": "March",
        "image": "https://example.org/p.jpg",
        "image_alt": "A photo",
    }
    data["audience"] = {"segments": ["a", "b"]}
    data["receipts"] = {"exclude": ["x@example.org"], "enabled": False}
    data["sendgrid"].update(asm_group_id=7, categories=["c"], timeout=12.5)
    data["serve"] = {**data.get("serve", {}), "public_url": "https://example.org/nf/"}
    return tomli_w.dumps(data)


@pytest.mark.parametrize("text", [SAMPLE, full_config()], ids=["sample", "full"])
def test_a_parsed_config_holds_exactly_what_the_models_validated(text: str) -> None:
    model = config_model.ConfigModel.model_validate(tomllib.loads(text))
    config = parse_config(text, ROOT / "config.toml")
    assert as_dict(config.model) == model.model_dump()

    def same(a: Any, b: Any) -> None:  # equal and of one type, all the way down
        assert type(a) is type(loaded_value(b)) or (a == b and type(a) is type(b))
        if isinstance(b, BaseModel):
            for name in type(b).model_fields:
                same(getattr(a, name), getattr(b, name))
        elif isinstance(b, tuple | list):
            for x, y in zip(a, b, strict=True):
                same(x, y)
        elif isinstance(b, dict):
            assert list(a) == list(b)
            for k in b:
                same(a[k], b[k])

    same(config.model, model)


@pytest.mark.parametrize("text", [SAMPLE, full_config()], ids=["sample", "full"])
@pytest.mark.parametrize("edition", ["2022-02", "2022-03", "2030-01"])
def test_the_content_hash_is_the_one_the_models_gave(text: str, edition: str) -> None:
    """What approvals and frozen sends refer to: the old formula, over model_dump(mode="json")."""
    m = config_model.ConfigModel.model_validate(tomllib.loads(text))
    settings = m.editions.get(edition, config_model.EditionSettings())
    parts = {
        "newsletter": m.newsletter.model_dump(mode="json"),
        "sender": m.sender.model_dump(mode="json"),
        "sections": [s.model_dump(mode="json") for s in m.sections],
        "edition": settings.model_dump(mode="json"),
        "call_to_action": m.call_to_action.model_dump(mode="json") if m.call_to_action else None,
        "build": m.build.model_dump(mode="json"),
        "public_url": m.serve.public_url,
    }

    def digest(p: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()

    config = parse_config(text, ROOT / "config.toml")
    assert config.content_sha256(edition) == digest(parts)
    earlier = {k: v for k, v in parts.items() if k != "public_url"}
    assert config.earlier_content_sha256s(edition) == (digest(earlier),)


def test_a_table_is_a_frozen_keyword_only_value_as_a_dataclass_would_be() -> None:
    s = config_loaded.Section(key="wg1", title="Working Group 1")
    assert s == config_loaded.Section(key="wg1", title="Working Group 1", intro="")
    assert hash(s) == hash(config_loaded.Section(key="wg1", title="Working Group 1"))
    assert s != config_loaded.Section(key="wg1", title="Other")
    assert repr(s) == "Section(key='wg1', title='Working Group 1', intro='')"
    assert config_loaded.Job() != config_loaded.ReportJob()  # another class, never equal
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.key = "wg2"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del s.key
    with pytest.raises(TypeError, match="needs 'title'"):
        config_loaded.Section(key="wg1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no field 'titel'"):
        config_loaded.Section(key="wg1", title="T", titel="T")  # type: ignore[call-arg]
    assert s.replace(intro="Hi") == config_loaded.Section(
        key="wg1", title="Working Group 1", intro="Hi"
    )
    assert pickle.loads(pickle.dumps(s)) == s
    nl, sender = config_loaded.Newsletter, config_loaded.Sender  # any value will do here
    a, b = (config_loaded.Settings(newsletter=nl, sender=sender, sections=()) for _ in "ab")  # type: ignore[arg-type]
    assert a.editions == {} and a.editions is not b.editions  # a factory's value is each one's own
