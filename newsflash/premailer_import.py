"""premailer, imported without requests, which it imports for one thing: fetching a stylesheet
that a <link> names.

newsflash never lets it fetch (allow_network=False: a build must not touch the network,
DESIGN.md), yet requests and what it imports (urllib3, charset_normalizer, chardet) were about
half of premailer's import, which a first build pays (150 ms of 300, measured). So while
premailer is imported, `requests` is a stand-in for the module not imported yet: premailer
keeps it, and the first attribute read from it, should premailer ever fetch, imports requests
itself. The stand-in is in sys.modules only while premailer is imported, so every other
`import requests` finds the real module; a process that has imported requests already, or
premailer, imports nothing new.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _Deferred(types.ModuleType):
    """A module imported on the first read of one of its attributes."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:  # read while premailer is imported
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _premailer() -> types.ModuleType:
    if "requests" in sys.modules or "premailer" in sys.modules:
        return importlib.import_module("premailer")
    stand_in = _Deferred("requests")
    sys.modules["requests"] = stand_in
    try:
        return importlib.import_module("premailer")
    finally:
        if sys.modules.get("requests") is stand_in:
            del sys.modules["requests"]


Premailer = _premailer().Premailer
