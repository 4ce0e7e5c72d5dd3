"""config.toml's validated Config kept between commands, so a start where the file did not
change validates nothing: no email_validator, no schema built, no model checked.

The Config is a pure function of the file's text and its real path (the SendGrid key comes
from the environment, never from the file: a key in it is refused), and of the code that
validates it: newsflash's own files, Python and the installed libraries, pydantic and
email_validator among them (render_cache.package_fingerprint, the build stamp's). The key
is those three; a kept Config is used only if its key is the one just taken, so one byte of
config.toml, a moved workspace or an upgrade validates the file again. Only a Config that
validated is kept: a file that does not validate says exactly what it always said.

Where: the user's cache folder (`$XDG_CACHE_HOME/newsflash/config`, else `~/.cache/...`), a
folder made private to the user, one file per config.toml path (replaced when the file
changes, so the folder grows with the workspaces, not with the edits). Not state/: that is
the workspace's, may be shared with a team or read-only, and whoever may write a kept Config
decides what the next command believes was validated; not beside the items either, where
contributors write.

The kept form is config_loaded's plain classes, so a hit imports neither pydantic nor the
models (config.py, with them, is imported on a miss alone). It is a pickle read by an
Unpickler that finds only those classes and PosixPath (the pickle documentation's
"Restricting Globals"), so a file written by anyone else runs no code; one not owned by
the user, or writable by others, is not read at all.
Whatever is uncertain (no file, an unreadable, truncated, corrupt, foreign or older one, a
class not allowed, a folder that will not be written) is a full validation, never an error.
Two commands writing at once each replace the file atomically with a whole one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
from collections.abc import Callable
from pathlib import Path, PosixPath
from typing import Any, ClassVar

from newsflash import config_loaded, user_cache
from newsflash.config_loaded import Config, Settings, read_config_text
from newsflash.config_values import timezone
from newsflash.files import write_atomic
from newsflash.render_cache import package_fingerprint

FORMAT = 2  # 1 kept pydantic models
FOLDER = ("newsflash", "config")  # under the user's cache folder
_ALLOWED: dict[tuple[str, str], type] = {
    ("pathlib", "PosixPath"): PosixPath,
    (config_loaded.__name__, "Config"): Config,
    **{(config_loaded.__name__, name): cls for name, cls in config_loaded.CLASSES.items()},
}


class _Unpickler(pickle._Unpickler):
    """Finds the config's own classes and nothing else: no function, so no code to run.

    The pure-Python unpickler (a kept file is a few KB), because its steps can be checked:
    BUILD on a class itself would set a class attribute (Config.state_dir, say) for the
    whole process even from a file whose key then fails, so it is refused."""

    def find_class(self, module: str, name: str) -> type:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a config")
        return allowed

    def _build_on_an_instance(self) -> None:
        if isinstance(self.stack[-2], type):  # type: ignore[attr-defined]
            raise pickle.UnpicklingError("a kept config sets no class's attributes")
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = {
        **pickle._Unpickler.dispatch,
        pickle.BUILD[0]: _build_on_an_instance,
    }


def cache_folder() -> Path | None:
    """`$XDG_CACHE_HOME/newsflash/config`, else `~/.cache/newsflash/config` (user_cache)."""
    return user_cache.cache_folder(*FOLDER)


def _key(text: str, path: Path) -> str:
    """What the Config depends on: the text parse_config reads, the real path, the code."""
    parts = (str(FORMAT), hashlib.sha256(text.encode()).hexdigest(), str(path))
    return hashlib.sha256("\0".join((*parts, package_fingerprint())).encode()).hexdigest()


def _file(folder: Path, path: Path) -> Path:
    return folder / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".pickle")


def _read(file: Path, key: str, path: Path) -> Config | None:
    """The kept Config if `file` is the user's, whole, of this format and key; else None."""
    data = user_cache.read_private(file)
    if data is None:
        return None
    try:  # any exception: a foreign or damaged file raises whatever its bytes lead to
        kept = _Unpickler(io.BytesIO(data)).load()
    except Exception:
        return None
    if not (isinstance(kept, tuple) and len(kept) == 3 and kept[:2] == (FORMAT, key)):
        return None
    config = kept[2]
    if type(config) is not Config or type(config.model) is not Settings:
        return None
    return config if config.path == path else None


def parse_config(text: str, path: Path) -> Config:
    """config.parse_config, imported by a miss alone: a hit needs no pydantic nor models."""
    from newsflash import config  # deferred: pydantic and the models (module docstring)

    return config.parse_config(text, path)


def _still_valid(config: Config) -> bool:
    """The one check whose answer is not in the key: the time zone, which this machine's
    tz database (updated apart from Python) must still know."""
    try:
        timezone(config.model.newsletter.timezone)
    except ValueError:
        return False
    return True


def _keep(folder: Path, file: Path, key: str, config: Config) -> None:
    """Write the Config under its key; a folder that will not take it costs speed only."""
    with contextlib.suppress(OSError, pickle.PicklingError):
        data = pickle.dumps((FORMAT, key, config), protocol=pickle.HIGHEST_PROTOCOL)
        write_atomic(file, data, mode=0o600)


def load_cached(path: Path) -> Config:
    """config.load_config, answered from the cache when config.toml and the code are those
    of a Config validated before; the same errors when the file does not validate."""
    path = path.resolve()
    text = read_config_text(path)
    folder = cache_folder()
    if folder is None or not user_cache.private_folder(folder):
        return parse_config(text, path)
    key, file = _key(text, path), _file(folder, path)
    kept = _read(file, key, path)
    if kept is not None and _still_valid(kept):
        return kept
    config = parse_config(text, path)
    _keep(folder, file, key, config)
    return config
