"""Live preview: the coming edition in a browser, rebuilt when an item, a template or config.toml
changes, and reloaded in the open page within about a second.

    previewer.py  Previewer: builds in memory and keeps the latest Snapshot
    watcher.py    Watcher: watchdog on the edition's inputs, debounced
    guard.py      which Host is answered, and the headers every answer carries
    preview.py    PreviewServer: ThreadingHTTPServer on 127.0.0.1 with the page, /email.html,
                  /email.txt, /version and /events (Server-Sent Events; the page falls back
                  to polling)

The server answers only GET (nothing here changes state, so a cross-site form has nothing to
forge), only the routes it names (no file is served from a path), and only for the Host names
guard.py allows.
"""

from __future__ import annotations

import errno
import http.server
import secrets
import socket
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from newsflash.errors import NewsflashError
from newsflash.signals import sigterm_as_interrupt
from newsflash.web.guard import (
    COMMON_HEADERS,
    EMAIL_CSP,
    LOCKED_CSP,
    allowed_hosts,
    host_name,
    page_csp,
)
from newsflash.web.previewer import Previewer, Snapshot
from newsflash.web.watcher import Watcher

PAGE_TEMPLATE = "preview_page.html.j2"
KEEPALIVE = 15.0


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
        for name, value in {
            **COMMON_HEADERS,
            "Content-Security-Policy": LOCKED_CSP,
            **extra,
        }.items():
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
                extra={"Content-Security-Policy": page_csp(nonce), "X-Frame-Options": "DENY"},
            )
        elif path == "/email.html":
            self._send(
                snap.email_html or _PLACEHOLDER,
                "text/html",
                extra={"Content-Security-Policy": EMAIL_CSP, "X-Frame-Options": "SAMEORIGIN"},
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
    try:
        with sigterm_as_interrupt():  # SIGTERM stops as cleanly as Ctrl-C
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        echo("preview stopped")
