"""What a render depends on, as one hash, and the rendered emails kept under it on disk.

A cached email is only sound if the key covers everything that shapes it, so the key is taken
from what the templates actually receive (the whole context: the edition with every field of
every item, the config sections it carries, the links), every file the template loader can
read (the workspace's templates/ and the package's, not only ``*.j2``), the code that turns
that context into HTML, and the installed libraries. Anything the key cannot read exactly
gives no key, and the email is rendered as if nothing were cached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from newsflash import __version__, read_cache
from newsflash.files import write_atomic
from newsflash.settings_table import Table, as_dict

PARTS = ("subject", "preheader", "mjml", "html", "text")
KEEP_ON_DISK = 16  # emails kept in state/render-cache: a few editions and their web versions
_PACKAGE = Path(__file__).resolve().parent
# The modules that run between the context and the finished HTML: the rest of newsflash only
# shapes the context, which the key holds itself.
_RENDER_CODE = (
    "render.py",
    "render_engine.py",
    "render_inline.py",
    "render_cut.py",
    "render_memo.py",
    "render_splice.py",
    "content.py",
    "content_rules.py",
    "months.py",
    "checks.py",
)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's fields, looked up once per class (the key reads every item's)."""
    return tuple(f.name for f in dataclasses.fields(cls))


_SCALARS = (str, int, float, bool, type(None), dt.date, dt.time)
_MOST_DIGESTS = 4096
# id -> (object, digest) of frozen dataclasses whose fields are all scalars (an Item): such
# an object cannot change, so its text is written once; holding it keeps its id from reuse.
_digests: dict[int, tuple[object, str]] = {}


def _frozen(cls: type) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    return bool(getattr(params, "frozen", False))


def frozen_digest(value: object) -> str | None:
    """The hash of an unchangeable object's fields, written once per object: a rebuild after
    one item changed re-encodes that item, not all thirty bodies (most of the key's time)."""
    kept = _digests.get(id(value))
    if kept is not None and kept[0] is value:
        return kept[1]
    cls: type = type(value)
    fields = {name: getattr(value, name) for name in _field_names(cls)}
    if not _frozen(cls) or not all(isinstance(v, _SCALARS) for v in fields.values()):
        return None
    text = json.dumps(fields, default=_plain, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if len(_digests) >= _MOST_DIGESTS:
        _digests.clear()
    _digests[id(value)] = (value, digest)
    return digest


def _plain(value: object) -> object:
    """json's fallback: every field of a dataclass (`compare=False` ones too: an item's
    anchor is in the email; an unchangeable one by the hash of its fields), a pydantic
    model's data, a config table's (its fields), dates as ISO text. Anything else raises
    TypeError, so the key is refused rather than guessed."""
    if isinstance(value, Table):
        return {"__class__": type(value).__qualname__, **as_dict(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest = frozen_digest(value)
        if digest is not None:
            return {"__class__": type(value).__qualname__, "__fields_sha256__": digest}
        fields = {name: getattr(value, name) for name in _field_names(type(value))}
        return {"__class__": type(value).__qualname__, **fields}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return {"__class__": type(value).__qualname__, **dump(mode="json")}
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"no exact text for {type(value).__qualname__}")


def _files(folders: Iterable[Path]) -> Iterable[bytes]:
    """Name and bytes of every file under each folder: the loader can `include` any of them.
    Each name and body is preceded by its length, so no file's bytes can pass for the name
    and bytes of another (two files are never taken for one that holds both)."""
    for n, folder in enumerate(folders):
        if not folder.is_dir():
            yield f"{n}:absent\0".encode()
            continue
        for path, rel in read_cache.files_under(folder):  # unchanged files from memory
            name = rel.encode()
            data = read_cache.read_bytes(path)
            yield f"{n}:{len(name)}:".encode() + name + f"{len(data)}:".encode() + data
        if read_cache.has_linked_folder(folder):
            # Never the same twice: such a tree is never cached, and no build stamp made of
            # it ever matches (its digests before and after a build differ, so none is kept).
            yield f"{n}:linked:".encode() + os.urandom(16)


def _fingerprint(files: Iterable[str]) -> str:
    """newsflash's version and the named files of the package, Python's version and every
    installed distribution's name and version (from the .dist-info folders on sys.path,
    which an upgrade renames)."""
    h = hashlib.sha256(f"{__version__}\0{sys.version}\0".encode())
    for name in files:
        h.update(name.encode() + b"\0" + (_PACKAGE / name).read_bytes() + b"\0")
    for names in _distributions():
        h.update(("\0".join(names) + "\0\0").encode())
    return h.hexdigest()


def _distributions() -> Iterable[list[str]]:
    """The .dist-info names of each sys.path folder that holds any, in sys.path's order (the
    first of two versions is the one imported). A folder without one installs no library,
    so it is not part of the key: the script's folder that Python puts first (the venv's
    bin/ for `newsflash`, the working folder for `python -m`, '' for `-c`) is not, and one
    build's email serves another started differently. A folder named twice counts once."""
    seen: set[str] = set()
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        if folder in seen:
            continue
        seen.add(folder)
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".dist-info"))
        except OSError:
            continue
        if names:
            yield names


@functools.cache
def code_fingerprint() -> str:
    """The fingerprint of the rendering code: computed once a process."""
    return _fingerprint(_RENDER_CODE)


@functools.cache
def package_fingerprint() -> str:
    """The fingerprint of every file of the package (its code and its templates; not the
    compiled __pycache__, which Python rewrites at will): what a whole command's output,
    not only its email, depends on (the build stamp's)."""
    files: list[str] = []
    for folder, subfolders, names in os.walk(_PACKAGE):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        rel = Path(folder).relative_to(_PACKAGE)
        files += [(rel / n).as_posix() for n in names]
    return _fingerprint(sorted(files))


def tree_digest(folders: Iterable[Path]) -> str:
    """The hash of every file's name and bytes under each folder (a missing folder counts
    as absent): what a loader that may read any of them depends on."""
    h = hashlib.sha256()
    for chunk in _files(folders):
        h.update(chunk)
    return h.hexdigest()


def render_key(
    context: dict[str, Any], template_folders: Iterable[Path], *extra: str
) -> str | None:
    """The hash of everything a render reads, or None if some of it has no exact text."""
    try:
        data = json.dumps(context, default=_plain, sort_keys=True).encode()
    except (TypeError, ValueError):
        return None
    h = hashlib.sha256(data)
    for chunk in _files(template_folders):
        h.update(chunk)
    h.update(("\0".join((code_fingerprint(), *extra))).encode())
    return h.hexdigest()


def email_document(key: str, parts: dict[str, str]) -> str:
    """A rendered email as kept on disk: its parts and the key they were rendered under."""
    return json.dumps({"key": key, **{name: parts[name] for name in PARTS}})


def email_parts(data: bytes, key: str) -> dict[str, str] | None:
    """The parts of an email_document kept under `key`; None for anything else."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    parts = {name: doc.get(name) for name in PARTS}
    if not all(isinstance(v, str) for v in parts.values()):
        return None
    return {k: str(v) for k, v in parts.items()}


class DiskCache:
    """Rendered emails under state/render-cache/<key>.json, the newest KEEP_ON_DISK kept.

    A file that cannot be read or is not what this module wrote is a miss, never an error:
    the email is rendered again and the file replaced. A folder that cannot be written costs
    the next build a render, not the build."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, key: str) -> dict[str, str] | None:
        try:
            data = (self.folder / f"{key}.json").read_bytes()
        except OSError:
            return None
        return email_parts(data, key)

    def put(self, key: str, parts: dict[str, str]) -> None:
        try:
            write_atomic(self.folder / f"{key}.json", email_document(key, parts))
            self._prune()
        except OSError:
            pass

    def _prune(self) -> None:
        """Keep the newest files; a file another build removes first is no matter."""
        found = []
        for path in self.folder.glob("*.json"):
            try:
                found.append((path.stat().st_mtime_ns, path))
            except OSError:
                continue
        for _, path in sorted(found, reverse=True)[KEEP_ON_DISK:]:
            path.unlink(missing_ok=True)
