"""The preview's eyes: watchdog on submissions/, templates/ and config.toml, debounced, so a
burst of saves is one rebuild and the open page reloads within about a second.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from newsflash.web.previewer import Previewer, Snapshot

DEBOUNCE = 0.15  # seconds of quiet after the last change before rebuilding
MAX_DELAY = 0.6  # rebuild at the latest this long after the first change of a burst
_CHANGES = {"created", "modified", "deleted", "moved"}  # not opened/closed: builds read files
_SCRATCH = ("~", ".swp", ".swx", ".tmp", ".part")


@dataclass
class _Watches:
    dirs: tuple[Path, ...] = ()
    config: Path | None = None
    scheduled: dict[tuple[str, bool], ObservedWatch] = field(default_factory=dict)


class _PokeOnChange(FileSystemEventHandler):
    """watchdog's callback: a change to an input pokes the watcher, which debounces."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(p and self.watcher.relevant(Path(str(p))) for p in paths):
            self.watcher.poke()


class Watcher:
    """Watches the edition's inputs and rebuilds after a short quiet spell."""

    def __init__(self, previewer: Previewer, on_rebuild: Callable[[Snapshot], None]) -> None:
        self.previewer = previewer
        self.on_rebuild = on_rebuild
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._watches = _Watches()
        self._handler = _PokeOnChange(self)
        self.observer: BaseObserver = Observer()
        try:
            self.observer.start()
        except OSError:  # e.g. out of inotify watches: poll instead
            self.observer = PollingObserver(timeout=0.5)
            self.observer.start()
        self._thread = threading.Thread(target=self._run, name="preview-rebuild", daemon=True)

    def start(self) -> None:
        self._update_watches()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        self.observer.stop()
        self.observer.join(timeout=2)
        self._thread.join(timeout=5)

    def poke(self) -> None:
        self._dirty.set()

    def relevant(self, path: Path) -> bool:
        name = path.name
        if name.startswith(".#") or name.endswith(_SCRATCH) or name == "4913":
            return False  # editors' scratch files
        w = self._watches
        return path == w.config or any(path == d or d in path.parents for d in w.dirs)

    def _update_watches(self) -> None:
        config, dirs = self.previewer.watched()
        w = self._watches
        w.config, w.dirs = config, dirs
        wanted = {(str(config.parent), False)}
        for d in dirs:
            # A missing folder is noticed by watching its parent for its creation.
            wanted.add((str(d), True) if d.is_dir() else (str(d.parent), False))
        for key in set(w.scheduled) - wanted:
            with contextlib.suppress(KeyError, OSError):
                self.observer.unschedule(w.scheduled.pop(key))
        for key in wanted - set(w.scheduled):
            # A folder that vanished since the check is tried again after the next rebuild.
            with contextlib.suppress(OSError):
                w.scheduled[key] = self.observer.schedule(self._handler, key[0], recursive=key[1])

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._dirty.wait(timeout=1.0):
                continue
            start = time.monotonic()
            while time.monotonic() - start < MAX_DELAY:
                self._dirty.clear()
                if self._stop.wait(DEBOUNCE) or not self._dirty.is_set():
                    break
            if self._stop.is_set():
                return
            self._dirty.clear()
            if self.previewer.rebuild():
                self.on_rebuild(self.previewer.snapshot())
            self._update_watches()
