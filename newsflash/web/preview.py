"""Live preview: the coming edition in a browser, rebuilt when an item, a template or config.toml
changes, and reloaded in the open page within about a second.

    Previewer     builds in memory (nothing is written) and keeps the latest snapshot; any
                  failure, expected or not, becomes an error on the page, never a crash
    Watcher       watchdog on submissions/, templates/ and config.toml, debounced
    PreviewServer ThreadingHTTPServer on 127.0.0.1: the page, /email.html, /email.txt,
                  /version and /events (Server-Sent Events; the page falls back to polling)

Any web page the secretariat visits can make the browser send requests to 127.0.0.1, and with
DNS rebinding (a name of the attacker's that resolves to 127.0.0.1) read the answers. So the
server answers only requests whose Host is a loopback name or the host it was started on
(anything else: 421), only GET (nothing here changes state, so a cross-site form has nothing to
forge), only the routes it names (no file is served from a path), and every answer carries
headers that keep a browser from sniffing, framing or leaking it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import http.server
import ipaddress
import re
import secrets
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from newsflash import personalise, pipeline
from newsflash.config import Config, load_config
from newsflash.edition import parse_edition_id
from newsflash.errors import NewsflashError
from newsflash.render import Renderer
from newsflash.state import ledgers

PAGE_TEMPLATE = "preview_page.html.j2"
DEBOUNCE = 0.15  # seconds of quiet after the last change before rebuilding
MAX_DELAY = 0.6  # rebuild at the latest this long after the first change of a burst
KEEPALIVE = 15.0
_CHANGES = {"created", "modified", "deleted", "moved"}  # not opened/closed: builds read files
_SCRATCH = ("~", ".swp", ".swx", ".tmp", ".part")


@dataclass(frozen=True)
class Snapshot:
    """One rebuild's outcome; `build` is the latest good build, kept while an error shows."""

    version: str
    built_at: str
    edition_id: str
    build: pipeline.Build | None
    error: str | None = None
    trace: str | None = None
    email_html: str = ""
    email_text: str = ""
    from_line: str = ""
    stale: bool = False  # the build shown is older than the error


@dataclass
class _Watches:
    dirs: tuple[Path, ...] = ()
    config: Path | None = None
    scheduled: dict[tuple[str, bool], ObservedWatch] = field(default_factory=dict)


class Previewer:
    """Rebuilds on request and hands out the latest snapshot; safe to share between threads."""

    def __init__(self, config_path: Path, edition_id: str | None = None) -> None:
        if edition_id is not None:
            parse_edition_id(edition_id)  # a typo is a usage error, not a page to show
        self.config_path = config_path.resolve()
        self.edition_id = edition_id
        self._boot = secrets.token_hex(4)
        self._count = 0
        self._digest = ""
        self._renderer: tuple[str, Renderer] | None = None
        self._config: Config | None = None
        self._changed = threading.Condition()
        self._build_lock = threading.Lock()
        self.closed = False
        self._snapshot = Snapshot(
            f"{self._boot}-0",
            "",
            edition_id or "",
            None,
            error="The first build has not finished yet.",
        )

    @property
    def config(self) -> Config | None:
        """The config of the last build that could read it."""
        return self._config

    def snapshot(self) -> Snapshot:
        with self._changed:
            return self._snapshot

    def wait_for_change(self, version: str, timeout: float) -> str:
        """Block until the version differs from `version` (or the timeout); return the latest."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.closed or self._snapshot.version != version, timeout
            )
            return self._snapshot.version

    def close(self) -> None:
        """End every wait_for_change, now and later: the server is stopping."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def _renderer_for(self, config: Config) -> Renderer:
        key = f"{config.sha256}:{config.templates_dir}"
        if self._renderer is None or self._renderer[0] != key:
            self._renderer = (key, Renderer(config))
        return self._renderer[1]

    def rebuild(self) -> bool:
        """Build once; True if what the page shows changed (and the version moved)."""
        with self._build_lock:
            previous = self.snapshot()
            edition_id = self.edition_id or previous.edition_id
            build: pipeline.Build | None = None
            error = trace = None
            try:
                config = load_config(self.config_path)
                self._config = config
                edition_id = self.edition_id or pipeline.current_edition_id(config)
                build = ledgers.build_edition(config, edition_id, self._renderer_for(config))
            except NewsflashError as e:
                error = str(e)
            except Exception as e:  # a preview shows every failure and keeps serving
                error = f"unexpected error: {type(e).__name__}: {e}"
                trace = traceback.format_exc()
            snap = self._snapshot_of(previous, edition_id, build, error, trace)
            with self._changed:
                if snap is None:
                    return False
                self._snapshot = snap
                self._changed.notify_all()
            return True

    def _snapshot_of(
        self,
        previous: Snapshot,
        edition_id: str,
        build: pipeline.Build | None,
        error: str | None,
        trace: str | None,
    ) -> Snapshot | None:
        shown = build or previous.build
        html = text = from_line = ""
        if shown is not None and self._config is not None:
            nl = self._config.model.newsletter
            subs = personalise.substitutions(pipeline.SAMPLE_PERSON, nl.greeting_fallback)
            html = personalise.apply(shown.email.html, subs)
            text = personalise.apply(shown.email.text, subs)
            sender = self._config.model.sender
            from_line = f"{sender.from_name} <{sender.from_email}>"
        if build is not None:
            e = build.edition
            facts: tuple[object, ...] = (
                e.id,
                e.title,
                e.left_out,
                build.load.problems,
                build.email.checks,
                build.email.subject,
                build.email.preheader,
            )
        else:
            facts = (error, trace)
        digest = hashlib.sha256(repr((facts, html, text, from_line)).encode()).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        self._count += 1
        return Snapshot(
            version=f"{self._boot}-{self._count}",
            built_at=dt.datetime.now().strftime("%H:%M:%S"),
            edition_id=edition_id,
            build=shown,
            error=error,
            trace=trace,
            email_html=html,
            email_text=text,
            from_line=from_line,
            stale=build is None and shown is not None,
        )

    def watched(self) -> tuple[Path, tuple[Path, ...]]:
        """config.toml and the folders whose changes alter the edition."""
        config = self._config
        if config is None:
            return self.config_path, ()
        return self.config_path, (config.submissions_dir.resolve(), config.templates_dir.resolve())


class _Handler(FileSystemEventHandler):
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
        self._handler = _Handler(self)
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


def _page_template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    source = resources.files("newsflash.web").joinpath(PAGE_TEMPLATE).read_text(encoding="utf-8")
    return env.from_string(source)


def render_page(snap: Snapshot, config_path: Path, nonce: str = "") -> str:
    """The preview page; `nonce` marks its one script as the only one the browser may run."""
    return _page_template().render(
        snap=snap, build=snap.build, config_path=config_path, nonce=nonce
    )


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.\-]+)(?::[0-9]{0,5})?")

# Answers that are not the page share these; the page and the email widen them a little.
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_LOCKED = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_EMAIL_CSP = (
    "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
    "font-src http: https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def _page_csp(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; frame-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


def host_name(value: str) -> str | None:
    """The name in a Host header (lower case, IPv6 bracketed and compressed, no port).

    None when the value is not a Host at all (empty, user info, two ports, an unbracketed
    IPv6 address...): a request carrying one is refused like a foreign name.
    """
    m = _HOST.fullmatch(value.strip(" "))
    if m is None:
        return None
    name = m.group(1).lower()
    if name.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
        except ValueError:
            return None
    return name


def allowed_hosts(host: str) -> frozenset[str]:
    """The loopback names and the host the server listens on, as `host_name` spells them."""
    own = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return LOOPBACK_NAMES | {host_name(own) or "localhost"}


_PLACEHOLDER = (
    "<!doctype html><meta charset='utf-8'><body style='font:16px sans-serif;"
    "padding:24px'><p>No successful build yet: see the error above.</p>"
)


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "newsflash-preview"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows the URL and rebuilds, not every request

    def _headers(self, status: int, content_type: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in {**_COMMON_HEADERS, "Content-Security-Policy": _LOCKED, **extra}.items():
            self.send_header(name, value)

    def _send(
        self,
        body: str,
        content_type: str,
        status: int = 200,
        extra: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8")
        self._headers(status, f"{content_type}; charset=utf-8", extra or {})
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refused(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        self.close_connection = True
        self._send(message + "\n", "text/plain", status, {"Connection": "close", **(extra or {})})

    def _misdirected(self) -> bool:
        """Refuse (421) a request whose Host is not ours: DNS rebinding ends here."""
        values = self.headers.get_all("Host") or []
        if len(values) == 1 and host_name(values[0]) in self.server.allowed_hosts:
            return False
        self._refused(
            421,
            f"Misdirected request: this preview answers only at {self.server.url} "
            "(or localhost, 127.0.0.1, [::1] with its port); open that address.",
        )
        return True

    def do_GET(self) -> None:
        if self._misdirected():
            return
        if not self.path.startswith("/"):
            self._refused(400, "Bad request: ask for a path such as / (this is not a proxy).")
            return
        path = self.path.split("?", 1)[0]
        previewer = self.server.previewer
        snap = previewer.snapshot()
        if path in ("/", "/index.html"):
            nonce = secrets.token_urlsafe(16)
            self._send(
                render_page(snap, previewer.config_path, nonce),
                "text/html",
                extra={"Content-Security-Policy": _page_csp(nonce), "X-Frame-Options": "DENY"},
            )
        elif path == "/email.html":
            self._send(
                snap.email_html or _PLACEHOLDER,
                "text/html",
                extra={"Content-Security-Policy": _EMAIL_CSP, "X-Frame-Options": "SAMEORIGIN"},
            )
        elif path == "/email.txt":
            self._send(snap.email_text, "text/plain")
        elif path == "/version":
            self._send(snap.version, "text/plain")
        elif path == "/events":
            self._events(snap.version)
        else:
            self._send("not found", "text/plain", 404)

    def _not_allowed(self) -> None:
        """Nothing in the preview changes state, so no other method is needed (or forgeable)."""
        if not self._misdirected():
            self._refused(405, "Method not allowed: the preview only shows.", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _not_allowed

    def _events(self, version: str) -> None:
        self._headers(200, "text/event-stream", {})
        self.end_headers()
        try:
            self.wfile.write(f"retry: 500\ndata: {version}\n\n".encode())
            self.wfile.flush()
            previewer = self.server.previewer
            while not previewer.closed:
                latest = previewer.wait_for_change(version, KEEPALIVE)
                if previewer.closed:
                    break
                line = f"data: {latest}\n\n" if latest != version else ": keepalive\n\n"
                self.wfile.write(line.encode())
                self.wfile.flush()
                version = latest
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page reloaded or closed


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], previewer: Previewer) -> None:
        self.previewer = previewer
        self.allowed_hosts = allowed_hosts(address[0])
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class PreviewServer:
    """The whole preview; `with PreviewServer(...) as server:` starts it, leaving stops it."""

    def __init__(
        self,
        config_path: Path,
        edition_id: str | None = None,
        *,
        port: int = 8000,
        host: str = "127.0.0.1",
        on_rebuild: Callable[[Snapshot], None] = lambda snap: None,
    ) -> None:
        self.previewer = Previewer(config_path, edition_id)
        try:
            self.httpd = _HTTPServer((host, port), self.previewer)
        except OSError as e:
            if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
                raise NewsflashError(
                    f"cannot listen on --host {host} ({e.strerror}): it is not a name or "
                    "address of this machine; leave it out, or pass --host 127.0.0.1."
                ) from e
            raise NewsflashError(
                f"cannot listen on {host}:{port} ({e.strerror}); "
                "pass another --port, or --port 0 for any free one."
            ) from e
        self.watcher = Watcher(self.previewer, on_rebuild)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="preview-http", daemon=True
        )

    @property
    def url(self) -> str:
        return self.httpd.url

    def start(self) -> str:
        self.previewer.rebuild()
        self.watcher.start()
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.previewer.close()  # ends the event streams
        self.watcher.stop()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> PreviewServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    config_path: Path,
    edition_id: str | None,
    port: int,
    echo: Callable[[str], None] = print,
    host: str = "127.0.0.1",
) -> None:
    """Run until Ctrl-C, reporting each rebuild in one line."""

    def report(snap: Snapshot) -> None:
        if snap.error:
            first = snap.error.splitlines()[0] if snap.error else ""
            echo(f"{snap.built_at} rebuild failed: {first}")
        elif snap.build is not None:
            problems = len(snap.build.load.errors)
            extra = f", {problems} item file(s) with errors" if problems else ""
            echo(f"{snap.built_at} rebuilt {snap.edition_id}{extra}")

    server = PreviewServer(config_path, edition_id, port=port, host=host, on_rebuild=report)
    url = server.start()
    report(server.previewer.snapshot())
    echo(f"Preview of the edition at {url}  (Ctrl-C stops)")
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if main:
            signal.signal(signal.SIGTERM, previous)
        echo("preview stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops as cleanly as Ctrl-C
