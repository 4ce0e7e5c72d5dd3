"""Templates' output kept by what they read, so a warm rebuild writes only what changed.

A template's output is a function of the context values it reads, its own code and the code
of the templates it includes (an include passes the context on, and the including template's
locals are made of the same values). So a template that includes only files named in its
text, extends, imports and defines blocks of nothing and draws no lots is kept by the values
of every name it and its includes read, and by the very template objects it would include
now: an included file edited since is loaded again as a new object, which gives a new key. A
rebuild after one item changed then writes that item and its section again, and takes every
other section, item and partial from memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import jinja2
from jinja2 import meta, nodes
from jinja2.runtime import Context
from jinja2.utils import missing
from markupsafe import Markup

from newsflash.render_cache import frozen_digest

# What a kept template may not hold: what it would read there is not in the text it names.
_NOT_KEPT = (nodes.Extends, nodes.Import, nodes.FromImport, nodes.Block)
_IMPURE_FILTERS = {"random"}
MEMO_SIZE = 512  # outputs kept per template: an edition's items, a few editions over
_PLAN = "_newsflash_memo_plan"  # where a loaded template keeps its plan


@dataclass(frozen=True)
class Plan:
    """What a template reads from its context, and the templates it includes by name."""

    names: tuple[str, ...]
    includes: tuple[str, ...]


def memo_plan(env: jinja2.Environment, source: str, name: str) -> Plan | None:
    """The template's plan, if its output is a function of its names' values, its code and
    its includes' (Jinja2's compiled code reads exactly these names, once, at its start)."""
    ast = env.parse(source, name)
    if next(ast.find_all(_NOT_KEPT), None) is not None:
        return None
    if any(f.name in _IMPURE_FILTERS for f in ast.find_all(nodes.Filter)):
        return None
    includes = []
    for node in ast.find_all(nodes.Include):
        chosen = node.template.value if isinstance(node.template, nodes.Const) else None
        if node.ignore_missing or type(chosen) is not str:
            return None  # a name chosen while rendering, or a file that may be absent
        includes.append(chosen)
    names = tuple(sorted(meta.find_undeclared_variables(ast)))
    return Plan(names, tuple(dict.fromkeys(includes)))


_TEXTS = (str, Markup, int, bool, type(None))


def value_key(value: object) -> object | None:
    """A value as a key that equals another only if a template writes both alike: text,
    whole numbers and flags with their type (1, True and "1" differ), an unchangeable
    dataclass by the hash of its fields (an Item), or by its class and its fields' keys
    (a section: its texts and a tuple of items), a tuple by its members' keys; anything else
    (a float, whose -0.0 equals 0.0, a list, a loop, a function, a config model) gives none."""
    if value is missing:
        return ("missing",)
    kind = type(value)
    if kind in _TEXTS:
        return (kind.__name__, value)
    if isinstance(value, tuple) and kind is tuple:
        keys = tuple(value_key(v) for v in value)
        return None if None in keys else ("tuple", keys)
    names = _frozen_fields(kind)
    if names is None:
        return None
    fields = [getattr(value, n) for n in names]
    # A field no key can be made of is found before any member is read (an edition's
    # manifest, a dict, beside thirty items), so an edition gives no key at once.
    if not all(type(v) in _SCALARS or type(v) is tuple or _frozen_fields(type(v)) for v in fields):
        return None
    digest = frozen_digest(value)
    if digest is not None:
        return (kind.__qualname__, digest)
    keys = tuple(value_key(v) for v in fields)
    return None if None in keys else (kind.__qualname__, keys)


_SCALARS = (*_TEXTS, dt.date)


_fields_of: dict[type, tuple[str, ...] | None] = {}


def _frozen_fields(kind: type) -> tuple[str, ...] | None:
    """The field names of an unchangeable (frozen) dataclass, None for any other class:
    looked up once per class."""
    if kind not in _fields_of:
        params = getattr(kind, "__dataclass_params__", None)
        frozen = dataclasses.is_dataclass(kind) and getattr(params, "frozen", False)
        _fields_of[kind] = tuple(f.name for f in dataclasses.fields(kind)) if frozen else None
    return _fields_of[kind]


def _closure(
    env: jinja2.Environment, template: jinja2.Template
) -> tuple[tuple[jinja2.Template, ...], tuple[str, ...]] | None:
    """The template and every template it includes, as loaded now, and every name they read;
    None if one of them cannot be kept (or includes itself)."""
    seen: list[jinja2.Template] = []
    names: set[str] = set()
    todo = [template]
    while todo:
        current = todo.pop()
        plan: Plan | None = getattr(current, _PLAN, None)
        if plan is None:
            return None
        if current in seen:
            continue
        seen.append(current)
        names.update(plan.names)
        try:  # an include in a branch not taken may name a file missing or broken
            todo += [env.get_template(n, current.name) for n in plan.includes]
        except jinja2.TemplateError:
            return None  # rendered without the memo, which reads only what it takes
    if len({t.name for t in seen}) < len(seen):
        return None  # two versions of one file in one render: keep nothing
    return tuple(seen), tuple(sorted(names))


def keep_output(env: jinja2.Environment, template: jinja2.Template, plan: Plan) -> None:
    """Keep the template's output by the values of the names it and its includes read and
    by the included templates themselves: an edition's items and sections are written once
    each, not again on every rebuild."""
    setattr(template, _PLAN, plan)
    render = template.root_render_func
    memo: dict[tuple[object, ...], str] = {}

    def root(context: Context) -> Iterator[str]:
        found = _closure(env, template) if plan.includes else ((template,), plan.names)
        if found is None:
            yield from render(context)
            return
        others, names = found
        values = tuple(value_key(context.resolve_or_missing(n)) for n in names)
        if None in values:
            yield from render(context)
            return
        key = (others, names, values)
        text = memo.get(key)
        if text is None:
            text = "".join(render(context))
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = text
        yield text

    template.root_render_func = root
