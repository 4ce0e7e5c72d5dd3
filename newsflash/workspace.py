"""`newsflash init`: a new newsletter workspace that checks and builds as it is made.

A workspace is a config.toml (every key shown, see config_text), a submissions/ folder with one
example item, and a subscribers.csv with its header. The email design comes from the package;
`templates=True` copies it into templates/ for customising, where each file overrides the
package's one of its name. Nothing that exists is ever overwritten.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from newsflash.config import parse_config
from newsflash.config_text import config_text
from newsflash.errors import ConfigError
from newsflash.render import PACKAGE_TEMPLATES, effective_templates
from newsflash.scaffold import item_template
from newsflash.schedule.timetable import zone
from newsflash.schedule.which_edition import default_edition
from newsflash.subscribers import COLUMNS

CONFIG = "config.toml"
EXAMPLE_ITEM = Path("submissions") / "example-first-item.md"
SUBSCRIBERS = "subscribers.csv"
READY_LINE = "status: ready              # 'draft' keeps it out of every edition"
_EXAMPLE_BODY = """\
This is an example item, ready for the first edition so that `newsflash build` shows the
email at once. Write your own with `newsflash new SECTION`, then delete this file.
"""


class WorkspaceExists(ConfigError):
    """The folder already holds a config.toml; init never overwrites a newsletter."""


@dataclass(frozen=True)
class Workspace:
    """What init made, and what it found there already and left alone."""

    folder: Path
    first_edition: str
    written: tuple[Path, ...]
    kept: tuple[Path, ...]


def first_edition_at(now: dt.datetime | None = None) -> tuple[str, dt.date]:
    """Edition No. 1 of a newsletter started at `now` (the one its first send will carry),
    and the day it is in the newsletter's time zone."""
    probe = parse_config(config_text("2000-01"), Path(CONFIG))
    tz = zone(probe)
    return default_edition(probe, now), (now or dt.datetime.now(tz)).astimezone(tz).date()


def example_item(first_edition: str, today: dt.date) -> str:
    """The example item: valid, ready and pinned to edition No. 1."""
    text = item_template("news", "Welcome to our newsletter", today.isoformat())
    text = re.sub(r"^status: draft .*$", READY_LINE, text, count=1, flags=re.M)
    text = text.replace('# edition: "2022-03"', f'edition: "{first_edition}"', 1)
    head, _, _ = text.rpartition("---\n")
    return head + "---\n" + _EXAMPLE_BODY


def _files(first_edition: str, today: dt.date, templates: bool) -> dict[Path, bytes]:
    files = {
        Path(CONFIG): config_text(first_edition).encode(),
        EXAMPLE_ITEM: example_item(first_edition, today).encode(),
        Path(SUBSCRIBERS): (",".join(COLUMNS) + "\n").encode(),
    }
    if templates:
        for rel, source in effective_templates(PACKAGE_TEMPLATES).items():
            files[Path("templates") / rel] = source.read_bytes()
    return files


def init_workspace(
    folder: Path, *, templates: bool = False, now: dt.datetime | None = None
) -> Workspace:
    """Make a newsletter workspace in `folder` (created if absent). Refuses a folder that
    has a config.toml; keeps, and reports, any other file that is there already."""
    config = folder / CONFIG
    if config.exists() or config.is_symlink():  # a dangling link is somebody's config too
        raise WorkspaceExists(
            f"{config} exists already: {folder} is a newsletter. newsflash init never "
            "overwrites one; choose an empty or new folder."
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file; give init a folder (new or existing).")
    first, today = first_edition_at(now)
    files = _files(first, today, templates)
    _refuse_files_in_the_way(folder, list(files))
    written: list[Path] = []
    kept: list[Path] = []
    for rel, data in files.items():
        path = folder / rel
        if path.exists() or path.is_symlink() or not _write_new(path, data):
            kept.append(path)
        else:
            written.append(path)
    return Workspace(folder, first, tuple(written), tuple(kept))


def _refuse_files_in_the_way(folder: Path, paths: list[Path]) -> None:
    """Before anything is written: a file where init needs a folder (submissions, say) stops
    it, so a second run after moving the file starts from an untouched folder."""
    for rel in paths:
        for parent in reversed((folder / rel).parents):
            if parent.exists() and not parent.is_dir():
                raise ConfigError(
                    f"{parent} is a file where newsflash init needs a folder; move it away "
                    "and run newsflash init again (nothing was written)."
                )


def _write_new(path: Path, data: bytes) -> bool:
    """Write a file that must not exist yet; False if one appeared meanwhile (it is kept)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as f:  # "x": never replaces a file, even one made this instant
            f.write(data)
    except FileExistsError:
        return False
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot be written ({e.strerror or e}); check that the folder is yours "
            "and writable. Files written so far stay: delete them, or finish by hand."
        ) from e
    return True


__all__ = ["Workspace", "WorkspaceExists", "first_edition_at", "init_workspace"]
