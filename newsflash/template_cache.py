"""Jinja2's compiled templates kept between commands, so a cold build does not generate and
compile the Python of every template it renders (the templates' own parse still runs).

An entry is named by the hash of the environment's kind (HTML autoescaped, or plain text:
the same file compiles differently in each), the template's name and file, and
render_cache.package_fingerprint (newsflash's files, Python and the installed libraries,
Jinja2 among them): a new newsflash never reads an older entry, and Jinja2 itself rejects one
whose template source changed (its checksum of the source, in the entry).

Where: the user's cache folder (`$XDG_CACHE_HOME/newsflash/templates`, else `~/.cache/...`),
under the same rules as the config and item caches (user_cache: a folder private to the
user, no links, a file read only if it is the user's and nobody else may write it). A kept
template is code, as a .pyc file is: what keeps another user's code out is that folder rule.
What is read is never unpickled with globals (Jinja2's own reader unpickles the checksum),
and a file whose bytes do not match the digest written before them (truncated, damaged) is
not handed to marshal; any such entry is compiled again, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import marshal
import pickle
import types
from pathlib import Path

from jinja2.bccache import Bucket, BytecodeCache, bc_magic

from newsflash import user_cache
from newsflash.render_cache import package_fingerprint

FOLDER = ("newsflash", "templates")  # under the user's cache folder

MOST_FILES = 512  # a few newsflash versions' templates; past it the older half goes


class _NoGlobals(pickle.Unpickler):
    """Jinja2 keeps the source checksum pickled; a str needs no global, so none is found."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"{module}.{name} is not read from a kept template")


class KeptTemplates(BytecodeCache):
    """A jinja2 bytecode cache in the user's cache folder, for one kind of environment."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        parts = (self.kind, name, filename or "", package_fingerprint())
        return hashlib.sha256("\0".join(f"{len(p)}:{p}" for p in parts).encode()).hexdigest()

    def _file(self, bucket: Bucket) -> Path | None:
        folder = user_cache.cache_folder(*FOLDER)
        if folder is None or not user_cache.private_folder(folder):
            return None
        return folder / f"{bucket.key}.jinja"

    def load_bytecode(self, bucket: Bucket) -> None:
        file = self._file(bucket)
        data = None if file is None else user_cache.read_sealed(file)
        if data is None:
            return
        f = io.BytesIO(data)
        try:  # any exception: a foreign or damaged entry raises whatever its bytes lead to
            if f.read(len(bc_magic)) != bc_magic or _NoGlobals(f).load() != bucket.checksum:
                return
            code = marshal.load(f)
        except Exception:
            return
        if isinstance(code, types.CodeType):
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        file = self._file(bucket)
        if file is None:
            return
        with contextlib.suppress(OSError):
            user_cache.write_sealed(file, bucket.bytecode_to_string())
            user_cache.prune(file.parent, ".jinja", MOST_FILES)
