"""Changes newsflash itself makes to config.toml, with tomlkit, so every comment, blank line and
the order of the tables stay exactly as the secretariat wrote them.

The file is validated before the change (a broken file is not edited further) and after it
(the change must leave a config that loads); only then is it replaced, atomically. tomlkit
is imported only to make a change: every command that names an edition checks its id here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from newsflash.config import Config, load_config, parse_config
from newsflash.config_loaded import checked_edition_id as checked_edition_id  # start.py
from newsflash.errors import ConfigError
from newsflash.files import write_atomic

if TYPE_CHECKING:
    import tomlkit
    from tomlkit.items import Table


class EditionExists(ConfigError):
    """config.toml already has a table for the edition; newsflash never overwrites one."""


def edition_table(title: str, preheader: str = "", editorial: str = "") -> dict[str, str]:
    """What `newsflash init` and `newsflash edition new` write for one edition."""
    return {"title": title, "preheader": preheader, "editorial": editorial}


def _edition_table(settings: Mapping[str, str]) -> Table:
    import tomlkit  # deferred: tomlkit's start-up time (module docstring)

    table = tomlkit.table()
    for key, value in settings.items():
        table.add(key, value)
    table.add(tomlkit.nl())
    return table


def _editions(doc: tomlkit.TOMLDocument, path: Path) -> Table:
    """The document's [editions] table, made (as a super table: only its children show) if
    the file has none yet."""
    import tomlkit  # deferred: tomlkit's start-up time (module docstring)
    from tomlkit.items import Table  # deferred: tomlkit's start-up time

    if "editions" not in doc:
        doc.append("editions", tomlkit.table(is_super_table=True))
    editions = doc["editions"]
    if not isinstance(editions, Table):
        raise ConfigError(
            f"{path}: 'editions' is written inline; write each edition as its own "
            '[editions."YYYY-MM"] table so newsflash can add one.'
        )
    return editions


def add_edition(path: Path, edition_id: str, settings: Mapping[str, str]) -> Config:
    """Add ``[editions."<edition_id>"]`` with `settings` to the config file at `path`;
    return the config as it loads afterwards. Refuses an edition that has a table already."""
    import tomlkit  # deferred: tomlkit's start-up time (module docstring)
    from tomlkit.exceptions import TOMLKitError  # deferred: tomlkit's start-up time
    from tomlkit.items import KeyType, SingleKey  # deferred: tomlkit's start-up time

    config = load_config(path)
    checked_edition_id(config, edition_id)
    if edition_id in config.model.editions:
        raise EditionExists(
            f'{config.path}: [editions."{edition_id}"] exists already; edit it there '
            "(newsflash never overwrites a table)."
        )
    text = config.path.read_text(encoding="utf-8")
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as e:  # tomllib read it, so this is tomlkit's own limit
        raise ConfigError(f"{config.path}: cannot be edited ({e}); add the table by hand.") from e
    _editions(doc, config.path).append(
        SingleKey(edition_id, KeyType.Basic), _edition_table(settings)
    )
    new_text = tomlkit.dumps(doc)
    updated = parse_config(new_text, config.path)
    write_atomic(config.path, new_text.encode("utf-8"))
    return updated
