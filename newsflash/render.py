"""Edition -> email: Jinja2 -> MJML -> HTML (mjml-python) -> CSS inlined (premailer) -> checks.

Rendering runs once per edition; per-recipient fields stay substitution tags. Nothing here
touches the network: MJML's default web-font link is switched off and premailer may not
download anything. The chain itself is render_engine, loaded on the first render that no
cache answers: a Renderer keeps its recent emails by the hash of everything they depend on
(render_cache), and `newsflash build` keeps them in state/ too, so an unchanged edition is
neither rendered again nor pays for importing the renderer.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsflash import personalise, read_cache
from newsflash.checks import Check, run_checks
from newsflash.config_loaded import Config
from newsflash.edition import Edition
from newsflash.errors import BuildError
from newsflash.render_cache import DiskCache, render_key
from newsflash.tokens import unsubscribe_link

if TYPE_CHECKING:
    from newsflash.render_engine import Templates

HTML_TEMPLATE = "edition.mjml.j2"
TEXT_TEMPLATE = "edition.txt.j2"
# The default email design, shipped inside the package; a workspace's templates/ overrides it
# file by file, so a new newsletter needs no copy and a customised one keeps only what it changed.
PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    """Everything a transport needs, identical for every recipient until the tags are filled."""

    edition_id: str
    subject: str
    preheader: str
    mjml: str
    html: str
    text: str
    checks: tuple[Check, ...]

    @property
    def size(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def ok(self) -> bool:
        return not any(c.level == "error" for c in self.checks)


def _template_files(folder: Path) -> dict[str, Path]:
    """The ``*.j2`` files under `folder` by relative name, editors' scratch files left out;
    those behind a linked folder too, since Jinja2 loads through the link."""
    found: dict[str, Path] = {}
    linked = read_cache.has_linked_folder(folder)
    listing = read_cache.files_through_links if linked else read_cache.files_under
    for p, rel in listing(folder):
        if not p.name.endswith(".j2"):
            continue
        if any(part.startswith((".", "#")) or part.endswith("~") for part in rel.split("/")):
            continue
        found[rel] = p
    return found


def effective_templates(folder: Path) -> dict[str, Path]:
    """Every template the renderer can load, by name: the workspace's own where it has one,
    else the package's, exactly as the loader chooses."""
    return {**_template_files(PACKAGE_TEMPLATES), **_template_files(folder)}


def template_hash(folder: Path) -> str:
    """Hash of every template the renderer can load, so an edited template changes the manifest.

    The hash covers what the loader would choose (a workspace file over the package's), so a
    workspace without templates/ and one holding unchanged copies hash alike. Only ``*.j2``
    files count, and not hidden ones (a vim swap file ``.x.j2.swp``, an emacs lock
    ``.#x.j2``), backups (``x.j2~``) or autosaves (``#x.j2#``): opening a template in an
    editor must not look like a change to the approved edition."""
    h = hashlib.sha256()
    for rel, p in sorted(effective_templates(folder).items()):
        h.update(rel.encode() + b"\0" + read_cache.read_bytes(p) + b"\0")
    return h.hexdigest()


class Renderer:
    """Holds the templates and the recent emails, so a long-running preview or scheduler
    renders warm and an unchanged edition is not rendered twice.

    `cache_dir` also keeps each email on disk (`newsflash build` gives state/render-cache),
    so the next process building the same edition skips the render and the renderer's
    import; every other caller (a send, its dry run, the preview) writes nothing."""

    memo_size = 32  # emails kept in memory: the item-fault search renders a dozen subsets

    def __init__(self, config: Config, *, cache_dir: Path | None = None) -> None:
        self.config = config
        folder = config.templates_dir
        if HTML_TEMPLATE not in effective_templates(folder):
            raise BuildError(
                f"{PACKAGE_TEMPLATES / HTML_TEMPLATE}: newsflash's own template is missing "
                f"and {folder} has none either. Reinstall newsflash "
                "(pip install --force-reinstall newsflash)."
            )
        self._templates: Templates | None = None
        self._memo: OrderedDict[str, RenderedEmail] = OrderedDict()
        self._lock = threading.Lock()  # the preview's and the scheduler's threads share one
        self.disk = DiskCache(cache_dir) if cache_dir is not None else None
        self.renders = 0  # how many renders no cache answered, for the tests and benchmarks

    @property
    def templates(self) -> Templates:
        """The Jinja2 environments, made on the first render no cache answers."""
        if self._templates is None:
            from newsflash import render_engine  # deferred: Jinja2, mjml, premailer (docstring)

            self._templates = render_engine.Templates(self.config.templates_dir, PACKAGE_TEMPLATES)
        return self._templates

    def context(self, edition: Edition, *, web: bool = False) -> dict[str, Any]:
        nl = self.config.model.newsletter
        sender = self.config.model.sender
        base = nl.web_base_url.rstrip("/")
        return {
            "edition": edition,
            "newsletter": nl,
            "sender": sender,
            "cta": self.config.model.call_to_action,
            "subject": self.subject(edition),
            "preheader": self.preheader(edition),
            "view_url": f"{base}/{edition.id}/",
            "archive_url": f"{base}/",
            "unsubscribe_url": self.unsubscribe_url(edition),
            "first_name_html": personalise.FIRST_NAME_HTML,
            "first_name": personalise.FIRST_NAME,
            "web": web,
        }

    def unsubscribe_url(self, edition: Edition) -> str:
        """The body's link: to `newsflash serve` with the partner's token tag where it runs,
        else the secretariat's own page with the recipient id."""
        public_url = self.config.model.serve.public_url
        if public_url:
            return unsubscribe_link(public_url, personalise.TOKEN)
        sender = self.config.model.sender
        return personalise.unsubscribe_url(
            sender.unsubscribe_url, edition.id, personalise.RECIPIENT_ID
        )

    def subject(self, edition: Edition) -> str:
        nl = self.config.model.newsletter
        return nl.subject.format(
            name=nl.name, number=edition.number, month=edition.month, title=edition.title
        )

    def preheader(self, edition: Edition) -> str:
        if edition.settings.preheader:
            return edition.settings.preheader
        titles = [i.title for i in edition.items][:3]
        return "In this edition: " + "; ".join(titles) if titles else edition.title

    def render(self, edition: Edition, *, web: bool = False) -> RenderedEmail:
        """Render one edition; `web=True` gives the archive version without personal links."""
        ctx = self.context(edition, web=web)
        size = self.config.model.build
        limits = (size.size_warn_kb, size.size_limit_kb)
        key = render_key(
            ctx,
            (PACKAGE_TEMPLATES, self.config.templates_dir),
            f"{type(self).__module__}.{type(self).__qualname__}",
        )
        memo_key = f"{key}:{limits}"
        if key is not None:
            with self._lock:
                kept = self._memo.get(memo_key)
                if kept is not None:
                    self._memo.move_to_end(memo_key)
                    return kept
        parts = self.disk.get(key) if self.disk is not None and key is not None else None
        if parts is None:
            parts = self._render_parts(ctx)
            if self.disk is not None and key is not None:
                self.disk.put(key, parts)
        checks = run_checks(parts["html"], warn_kb=limits[0], limit_kb=limits[1])
        email = RenderedEmail(
            edition.id,
            ctx["subject"],
            ctx["preheader"],
            parts["mjml"],
            parts["html"],
            parts["text"],
            tuple(checks),
        )
        if key is not None:
            with self._lock:
                self._memo[memo_key] = email
                while len(self._memo) > self.memo_size:
                    self._memo.popitem(last=False)
        return email

    def _render_parts(self, ctx: dict[str, Any]) -> dict[str, str]:
        """The chain itself: the templates, then MJML and premailer."""
        source, html, text = self.templates.render(HTML_TEMPLATE, TEXT_TEMPLATE, ctx)
        self.renders += 1
        return {
            "subject": ctx["subject"],
            "preheader": ctx["preheader"],
            "mjml": source,
            "html": html,
            "text": text,
        }
