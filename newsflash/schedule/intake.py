"""Intake: check each item file as it lands in submissions/ and tell its contributor at once.

A watchdog observer reports files created, opened, modified, closed and moved. On Linux
(inotify, which reports opens and closes) a file is judged once its writer has closed it
(close-after-write) or once it was moved in whole, and has then been quiet and stable for
`closed_settle` seconds; a file still open for writing waits for its close however long the
writer pauses (up to `open_timeout` seconds of silence, in case a writer dies holding it
open). Elsewhere, a file is judged once it has been stable (same size and mtime) for `settle`
seconds since the last event about it. So a file still being copied or saved in pieces is not
judged half-written.

Files that arrived or changed while the scheduler was down are checked at start: each file's
sha256 as last judged is kept in ``state/intake-judged.json``, and a file whose content differs
(or is new) is judged as if it had just landed. A workspace without that record yet (the first
start) judges the files written after the last line of ``state/intake.log``, or none if intake
never ran: the record starts from what is there.

The check is the same as `newsflash check`, with the same messages: `parse_item`, and
`edition.title_clashes` against the other item files. The result goes to the item's `contact`
through the configured transport, and one line per check goes to ``state/intake.log`` for the
secretariat.
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
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from newsflash.config import Config
from newsflash.edition import title_clashes
from newsflash.items import IGNORED_NAMES, ITEM_SUFFIXES, Item, Problem, parse_item
from newsflash.pipeline import load
from newsflash.schedule.intake_record import unjudged_files, write_record
from newsflash.schedule.timetable import zone
from newsflash.transports.factory import make_transport
from newsflash.web.guide import guide_url

try:  # Linux: the observer that reports close-after-write
    from watchdog.observers.inotify import InotifyObserver as _CloseReporting
except ImportError:  # pragma: no cover - other platforms
    _CloseReporting = None  # type: ignore[assignment,misc]

__all__ = ["LOG_FILE", "Intake", "Verdict", "check_file"]

log = logging.getLogger("newsflash.schedule.intake")

LOG_FILE = "intake.log"
RECORD_FILE = "intake-judged.json"  # see intake_record
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

    def notice(self, newsletter: str, guide: str) -> tuple[str, str]:
        """Subject and text for the contributor; `guide`, the address of the contributors'
        guide, is a page they can open, not a path in a repository they never see."""
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
        lines += ["", f"How to write an item file: {guide}"]
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


def check_file(
    data: bytes, key: str, sections: Sequence[str], others: Sequence[Item] = ()
) -> Verdict:
    """The verdict `newsflash check` gives the file: its own problems, and a title it shares
    with another ready item (`others`: the other item files; the file's own key is skipped)."""
    item, problems = parse_item(data, key, sections)
    if item is not None and item.status == "ready":
        for other in others:
            if other.key == key:
                continue
            clash = title_clashes([item, other])
            if clash:  # worded as `newsflash check` words it, about this file
                message = f"same title as {other.key}; " + _after(clash[0])
                problems.append(Problem(key, message, clash[0].field))
                break
    contact = item.contact if item is not None and item.contact else _contact_from_text(data)
    return Verdict(key, item, tuple(problems), contact)


def _after(problem: Problem) -> str:
    return problem.message.split("; ", 1)[1] if "; " in problem.message else problem.message


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
    whole: bool = False  # closed after writing, or moved in: the writer is done with it
    writing: bool = False  # written since it was last closed after writing
    opened: bool = False  # opened, and not closed since (only inotify reports these)
    signature: tuple[int, int] | None = None
    stable_since: float = 0.0


Event = Literal["created", "opened", "modified", "closed", "closed_no_write", "moved"]


class _FileEventRelay(FileSystemEventHandler):
    """Passes each file event watchdog reports on as (path, what happened)."""

    def __init__(self, on_path: Callable[[Path, Event], None]) -> None:
        self.on_path = on_path

    def _pass(self, event: FileSystemEvent, what: Event) -> None:
        if not event.is_directory:
            path = event.dest_path if what == "moved" else event.src_path
            self.on_path(Path(str(path)), what)

    def on_created(self, event: FileSystemEvent) -> None:
        self._pass(event, "created")  # also a file moved in from outside the folder

    def on_opened(self, event: FileSystemEvent) -> None:
        self._pass(event, "opened")

    def on_modified(self, event: FileSystemEvent) -> None:
        self._pass(event, "modified")

    def on_closed(self, event: FileSystemEvent) -> None:  # closed after writing
        self._pass(event, "closed")

    def on_closed_no_write(self, event: FileSystemEvent) -> None:
        self._pass(event, "closed_no_write")

    def on_moved(self, event: FileSystemEvent) -> None:  # renamed into place: written whole
        self._pass(event, "moved")


Notify = Callable[[Sequence[str], str, str], None]


class Intake:
    """Watches the drop folder while the scheduler runs; `start()` / `stop()`."""

    def __init__(
        self,
        config: Config,
        *,
        notify: Notify | None = None,
        settle: float = 2.0,
        closed_settle: float = 0.3,
        open_timeout: float = 60.0,
        poll: float = 0.1,
    ) -> None:
        self.config = config
        self.root = config.submissions_dir.resolve()
        self.log_path = config.state_dir / LOG_FILE
        self.record_path = config.state_dir / RECORD_FILE
        self.settle = settle
        self.closed_settle = closed_settle
        self.open_timeout = open_timeout
        self.poll = poll
        self._closes_reported = False  # set at start() if the observer reports closes
        self._notify = notify
        self._pending: dict[Path, _Pending] = {}
        self._judged: dict[Path, str] = {}  # path -> sha256 of the content last judged
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._worker: threading.Thread | None = None
        self._tz = zone(config)
        self._guide = guide_url(config)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._notify is None:
            self._notify = make_transport(self.config).send_notice
        observer = Observer()
        self._closes_reported = _CloseReporting is not None and isinstance(
            observer, _CloseReporting
        )
        observer.schedule(_FileEventRelay(self._seen), str(self.root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._catch_up()  # after the observer starts, so that no file lands unseen between
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

    def _seen(self, path: Path, what: Event = "modified") -> None:
        if not is_item_path(path, self.root):
            return
        now = time.monotonic()
        with self._lock:
            entry = self._pending.get(path)
            if entry is None:
                if what in ("opened", "closed_no_write"):
                    return  # read, not written (by us, too, when judging): nothing new
                entry = self._pending[path] = _Pending(now)
            entry.last_event = now
            if what in ("closed", "moved"):
                entry.whole, entry.writing, entry.opened = True, False, False
            elif what == "modified":
                entry.whole, entry.writing = False, True
            elif what == "opened":
                entry.whole, entry.opened = False, True
            elif what == "closed_no_write":
                entry.opened = False
            else:  # created
                entry.whole = False

    def _quiet_needed(self, entry: _Pending) -> float:
        """Seconds of quiet before a file is judged (see the module docstring)."""
        if not self._closes_reported:
            return self.settle
        if entry.whole:
            return self.closed_settle
        if entry.writing or entry.opened:
            return self.open_timeout  # still open for writing: wait for its close
        # Created but never opened here: moved or linked in from outside the folder, whole.
        # (Creating a file by opening it reports both at once, so this is not a new file.)
        return self.closed_settle

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
                if quiet >= self._quiet_needed(entry):
                    if (entry.writing or entry.opened) and self._closes_reported:
                        log.warning(
                            "intake: %s has been open for writing and silent for %g s; "
                            "checking it as it is",
                            path,
                            self.open_timeout,
                        )
                    del self._pending[path]
                    ready.append(path)
        return ready

    # -- files that landed while nobody watched ----------------------------------------------

    def _catch_up(self) -> None:
        """Queue every file that is new or changed since it was last judged."""
        judged, waiting = unjudged_files(self.root, self.record_path, self.log_path)
        now = time.monotonic()
        with self._lock:
            self._judged.update(judged)
            for path in waiting:
                self._pending.setdefault(path, _Pending(now, whole=True))
        write_record(self.root, self.record_path, self._judged)
        if waiting:
            log.info("intake: %d file(s) arrived or changed while it was stopped", len(waiting))

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
        write_record(self.root, self.record_path, self._judged)
        key = path.relative_to(self.root).as_posix()
        verdict = check_file(data, key, self.config.section_keys, load(self.config).items)
        outcome = "no contact to notify"
        if verdict.contact:
            subject, text = verdict.notice(self.config.model.newsletter.name, self._guide)
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
