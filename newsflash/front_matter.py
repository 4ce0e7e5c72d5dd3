"""A Markdown file's YAML front matter: split from the body, parsed safely, with line numbers.

Knows nothing of items: it finds the fields and where they stand, so that items.py can tell a
contributor which line to fix, and so that no file, however broken, runs code or a traceback.
"""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's parser when installed (PyYAML wheels ship it): reading front matter is most of a
# build's item-loading time. Safe either way: SafeConstructor, no arbitrary objects.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc]
    """SafeLoader that keeps an impossible date (2022-02-30) as text, reported as a bad date."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)  # type: ignore[arg-type]
    except (ValueError, AttributeError):  # AttributeError: '!!timestamp x'
        return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def split_front_matter(text: str) -> tuple[str, str, int] | None:
    """(yaml, body, line where body starts) or None when the file has no front matter."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    return None


def parse_yaml(fm: str) -> tuple[Any, yaml.Node | None]:
    """The front matter's values and its node tree (for line numbers), parsed once."""
    loader = _Loader(fm)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


# Quotes a word processor types for '"' and "'"; YAML takes them for text, not for quotes.
CURLY_OPEN = "“‘„‚«‹"
CURLY_CLOSE = "”’“‘»›"
CURLY = frozenset(CURLY_OPEN + CURLY_CLOSE)


def curly_quoted(text: str) -> str | None:
    """The text inside curly quotes that wrap the whole of `text`, or None.

    "“x” and “y”" is not wrapped: a quote inside the text means the outer ones are its own.
    """
    if len(text) < 2 or text[0] not in CURLY_OPEN or text[-1] not in CURLY_CLOSE:
        return None
    inner = text[1:-1]
    return None if CURLY & set(inner) else inner


def curly_quoted_values(node: yaml.Node | None) -> dict[str, str]:
    """Fields whose unquoted value is wrapped in curly quotes, with the text inside them.

    Only plain scalars count: a value in straight quotes ('“Quoted”') holds its curly quotes
    on purpose."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    found: dict[str, str] = {}
    for k, v in node.value:
        if isinstance(v, yaml.ScalarNode) and not v.style and hasattr(k, "value"):
            inner = curly_quoted(str(v.value))
            if inner is not None:
                found.setdefault(str(k.value), inner)
    return found


def key_lines(node: yaml.Node | None) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Line of each field, and fields written twice (YAML silently keeps the last one)."""
    if not isinstance(node, yaml.MappingNode):
        return {}, []
    lines: dict[str, int] = {}
    repeated: list[tuple[str, int]] = []
    for k, _ in node.value:
        if not hasattr(k, "value"):
            continue
        name, line = str(k.value), k.start_mark.line + 2
        if name in lines:
            repeated.append((name, line))
        else:
            lines[name] = line
    return lines, repeated
