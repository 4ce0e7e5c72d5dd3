"""Table: what `@dataclass(frozen=True, kw_only=True)` makes of a class, at a fraction of the
import cost, for the config's settings (config_loaded.py), which every command loads.

Not a dataclass, because `@dataclass` writes and compiles six methods for each class when its
module is imported: 18 ms for the config's 17 classes (measured in a cold build, as much as
the rest of the config's load), where Table's methods are written once for all of them. To a
type checker a Table is a frozen, keyword-only dataclass (PEP 681's dataclass_transform), and
it behaves as one: equal by value and class, hashable, each field set once, unknown or missing
fields refused, FrozenInstanceError on assignment, pickled as its fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import field
from typing import Any, ClassVar, Self, dataclass_transform


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Table:
    """One table of config.toml: its fields in order, a default as a class attribute or a
    `field(default_factory=...)`, and none without one (required)."""

    FIELDS: ClassVar[tuple[str, ...]] = ()
    FACTORIES: ClassVar[dict[str, Callable[[], Any]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        own = [n for n in vars(cls).get("__annotations__", {}) if n not in cls.FIELDS]
        cls.FIELDS = (*cls.FIELDS, *own)
        cls.FACTORIES = dict(cls.FACTORIES)
        for name in own:
            spec = cls.__dict__.get(name)
            if isinstance(spec, dataclasses.Field):  # each instance gets its own value
                cls.FACTORIES[name] = spec.default_factory  # type: ignore[assignment]
                delattr(cls, name)

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        unknown = sorted(values.keys() - set(cls.FIELDS))
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {unknown[0]!r}")
        for name in cls.FIELDS:
            if name in values:
                value = values[name]
            elif name in cls.FACTORIES:
                value = cls.FACTORIES[name]()
            elif hasattr(cls, name):
                value = getattr(cls, name)
            else:
                raise TypeError(f"{cls.__name__} needs {name!r}")
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Table)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__qualname__}({shown})"

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` (dataclasses.replace)."""
        return type(self)(**{**vars(self), **changes})


def as_dict(value: Any) -> Any:
    """A table as a dict, all the way down (dataclasses.asdict): pydantic's model_dump."""
    if isinstance(value, Table):
        return {name: as_dict(getattr(value, name)) for name in value.FIELDS}
    if isinstance(value, tuple | list):
        return type(value)(as_dict(v) for v in value)
    if isinstance(value, dict):
        return {k: as_dict(v) for k, v in value.items()}
    return value
