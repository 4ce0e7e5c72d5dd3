"""The preview's builds: the coming edition built in memory (nothing is written) and the
latest snapshot kept for the page. Any failure, expected or not, becomes an error on the page,
never a crash; the last good build stays on show beside it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from newsflash import personalise, pipeline
from newsflash.config import Config, load_config
from newsflash.errors import NewsflashError
from newsflash.months import parse_edition_id
from newsflash.render import Renderer
from newsflash.state import ledgers


@dataclass(frozen=True)
class Snapshot:
    """One rebuild's outcome; `build` is the latest good build, kept while an error shows."""

    version: str
    built_at: str
    edition_id: str
    build: pipeline.BuiltEdition | None
    error: str | None = None
    trace: str | None = None
    email_html: str = ""
    email_text: str = ""
    from_line: str = ""
    stale: bool = False  # the build shown is older than the error


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
            build: pipeline.BuiltEdition | None = None
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
        build: pipeline.BuiltEdition | None,
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
