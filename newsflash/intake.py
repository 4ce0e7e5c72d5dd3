"""Intake: check each item file as it lands in submissions/ and tell its contributor at once.

A watchdog observer reports created, modified and moved files; a file is judged only once it
has been stable (same size and mtime) for `settle` seconds since the last event about it, so a
file still being copied or saved in pieces is never judged half-written. The check is the same
`parse_item` as `newsflash check`, with the same messages. The result goes to the item's
`contact` through the configured transport, and one line per check goes to
``state/intake.log`` for the secretariat.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from newsflash.config import Config
from newsflash.items import IGNORED_NAMES, ITEM_SUFFIXES, Item, Problem, parse_item

__all__ = ["LOG_FILE", "Intake", "Verdict", "check_file"]

log = logging.getLogger("newsflash.intake")

LOG_FILE = "intake.log"
_CONTACT = re.compile(r"""^\s*contact\s*:\s*["']?([^\s"'#]+@[^\s"'#]+)""", re.MULTILINE)


@dataclass(frozen=True)
class Verdict:
    key: str
    item: Item | None
    problems: tuple[Problem, ...]
    contact: str

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def ok(self) -> bool:
        return self.item is not None and not self.errors

    def summary(self) -> str:
        if self.ok:
            warnings = len(self.problems)
            return "ok" + (f", {warnings} warning(s)" if warnings else "")
        warnings = len(self.problems) - len(self.errors)
        return f"{len(self.errors)} error(s)" + (f", {warnings} warning(s)" if warnings else "")

    def notice(self, newsletter: str) -> tuple[str, str]:
        """Subject and text for the contributor."""
        if self.ok:
            assert self.item is not None
            subject = f"{newsletter}: your item {self.key} is received"
            lines = [
                f"Thank you: your item file {self.key} was checked and is valid.",
                "",
                f"  title:   {self.item.title}",
                f"  section: {self.item.section}",
                f"  status:  {self.item.status}",
            ]
            if self.item.status != "ready":
                lines += ["", "It stays out of every edition until you write 'status: ready'."]
        else:
            subject = f"{newsletter}: your item {self.key} needs changes"
            lines = [
                f"Your item file {self.key} was checked and can't go into an edition yet.",
                "Please correct it and save it again; it is checked again as soon as it lands:",
            ]
        if self.problems:  # warnings too
            lines += [""] + [f"  {p}" for p in self.problems]
        lines += ["", "How to write an item file: see docs/contributors.md."]
        return subject, "\n".join(lines) + "\n"


def _contact_from_text(data: bytes) -> str:
    """The contact of a file too broken to parse: a plain scan for a `contact:` line."""
    m = _CONTACT.search(data.decode("utf-8", "replace"))
    if not m:
        return ""
    try:
        return validate_email(m.group(1), check_deliverability=False).normalized
    except EmailNotValidError:
        return ""


def check_file(data: bytes, key: str, sections: Sequence[str]) -> Verdict:
    item, problems = parse_item(data, key, sections)
    contact = item.contact if item is not None and item.contact else _contact_from_text(data)
    return Verdict(key, item, tuple(problems), contact)


def is_item_path(path: Path, root: Path) -> bool:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    if any(part.startswith((".", "_")) for part in rel.parts):
        return False  # hidden files and editors' temporary files, as load_items skips them
    return path.suffix.lower() in ITEM_SUFFIXES and path.name.lower() not in IGNORED_NAMES


@dataclass
class _Pending:
    last_event: float
    signature: tuple[int, int] | None = None
    stable_since: float = 0.0


class _Handler(FileSystemEventHandler):
    def __init__(self, on_path: Callable[[Path], None]) -> None:
        self.on_path = on_path

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.on_path(Path(str(event.src_path)))

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.on_path(Path(str(event.src_path)))

    def on_closed(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.on_path(Path(str(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.on_path(Path(str(event.dest_path)))


Notify = Callable[[Sequence[str], str, str], None]


class Intake:
    """Watches the drop folder while the scheduler runs; `start()` / `stop()`."""

    def __init__(
        self,
        config: Config,
        *,
        notify: Notify | None = None,
        settle: float = 0.5,
        poll: float = 0.1,
    ) -> None:
        self.config = config
        self.root = config.submissions_dir.resolve()
        self.log_path = config.state_dir / LOG_FILE
        self.settle = settle
        self.poll = poll
        self._notify = notify
        self._pending: dict[Path, _Pending] = {}
        self._judged: dict[Path, str] = {}  # path -> sha256 of the content last judged
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._worker: threading.Thread | None = None
        self._tz = _zone(config)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._notify is None:
            from newsflash.sending import make_transport

            self._notify = make_transport(self.config).send_notice
        observer = Observer()
        observer.schedule(_Handler(self._seen), str(self.root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._stop.clear()
        self._worker = threading.Thread(target=self._loop, name="newsflash-intake", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    def __enter__(self) -> Intake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- events and settling -----------------------------------------------------------------

    def _seen(self, path: Path) -> None:
        if not is_item_path(path, self.root):
            return
        with self._lock:
            entry = self._pending.get(path)
            if entry is None:
                self._pending[path] = _Pending(time.monotonic())
            else:
                entry.last_event = time.monotonic()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            for path in self._settled():
                try:
                    self._judge(path)
                except Exception:  # one file must never stop the watcher
                    log.exception("intake: checking %s failed", path)

    def _settled(self) -> list[Path]:
        now = time.monotonic()
        ready: list[Path] = []
        with self._lock:
            for path, entry in list(self._pending.items()):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    del self._pending[path]  # deleted or moved away before it settled
                    continue
                signature = (st.st_size, st.st_mtime_ns)
                if signature != entry.signature:
                    entry.signature, entry.stable_since = signature, now
                    continue
                quiet = min(now - entry.stable_since, now - entry.last_event)
                if quiet >= self.settle:
                    del self._pending[path]
                    ready.append(path)
        return ready

    # -- the check ---------------------------------------------------------------------------

    def _judge(self, path: Path) -> Verdict | None:
        try:
            data = path.read_bytes()
        except OSError as e:
            log.warning("intake: cannot read %s: %s", path, e)
            return None
        digest = hashlib.sha256(data).hexdigest()
        if self._judged.get(path) == digest:
            return None  # touched, not changed: the contributor has had this answer
        self._judged[path] = digest
        key = path.relative_to(self.root).as_posix()
        verdict = check_file(data, key, self.config.section_keys)
        outcome = "no contact to notify"
        if verdict.contact:
            subject, text = verdict.notice(self.config.model.newsletter.name)
            try:
                assert self._notify is not None
                self._notify([verdict.contact], subject, text)
                outcome = f"notified {verdict.contact}"
            except Exception as e:
                outcome = f"notice to {verdict.contact} failed: {e}"
                log.warning("intake: %s", outcome)
        self._log(verdict, outcome)
        return verdict

    def _log(self, verdict: Verdict, outcome: str) -> None:
        stamp = dt.datetime.now(self._tz).isoformat(timespec="seconds")
        messages = " | ".join(str(p) for p in verdict.problems)
        line = f"{stamp}  {verdict.key}  {verdict.summary()}  ({outcome})"
        if messages:
            line += f"  {messages}"
        log.info("intake: %s", line.split("  ", 1)[1])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(line.replace("\n", " ") + "\n")


def _zone(config: Config) -> dt.tzinfo:
    from newsflash.schedule import zone

    return zone(config)
