"""Edition -> email: Jinja2 -> MJML -> HTML (mjml-python) -> CSS inlined (premailer) -> checks.

Rendering runs once per edition; per-recipient fields stay substitution tags. Nothing here
touches the network: MJML's default web-font link is switched off and premailer may not
download anything.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import mjml
from premailer import Premailer

from newsflash import personalise
from newsflash.checks import Check, run_checks
from newsflash.config import Config
from newsflash.content import inline_markdown, markdown_text, wrap_text
from newsflash.edition import Edition
from newsflash.errors import BuildError, RenderError
from newsflash.months import human_date
from newsflash.tokens import unsubscribe_link

HTML_TEMPLATE = "edition.mjml.j2"
_DOCTYPE = re.compile(r"^\s*<!doctype html>", re.IGNORECASE)
_MJML_RESET = re.compile(r'<style type="text/css">(\s*#outlook a\s*\{)')
_BODY = re.compile(r"(<body[^>]*>)(.*)(</body>)", re.DOTALL)
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
    """The ``*.j2`` files under `folder` by relative name, editors' scratch files left out."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for p in sorted(folder.rglob("*.j2")):
        rel = p.relative_to(folder)
        if any(part.startswith((".", "#")) or part.endswith("~") for part in rel.parts):
            continue
        if p.is_file():
            found[rel.as_posix()] = p
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
        h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


class TemplateLoader(jinja2.BaseLoader):
    """The workspace's templates/ first, then the package's: one file overrides one file.

    A jinja ChoiceLoader would keep serving a package template from its cache after the
    workspace gains a file of that name, so a long-running preview or scheduler would go on
    ignoring the new override; here a package template is up to date only while the workspace
    has no file of its name. An absent workspace folder is fine: the package's design is used
    whole."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.own = jinja2.FileSystemLoader(folder)
        self.package = jinja2.FileSystemLoader(PACKAGE_TEMPLATES)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            return self.own.get_source(environment, template)
        except jinja2.TemplateNotFound:
            pass
        source, filename, uptodate = self.package.get_source(environment, template)
        own = self.folder / template

        def fresh() -> bool:
            return not own.is_file() and (uptodate is None or uptodate())

        return source, filename, fresh


class Renderer:
    """Holds the template environment so a long-running preview or scheduler renders warm."""

    def __init__(self, config: Config) -> None:
        self.config = config
        folder = config.templates_dir
        if HTML_TEMPLATE not in effective_templates(folder):
            raise BuildError(
                f"{PACKAGE_TEMPLATES / HTML_TEMPLATE}: newsflash's own template is missing "
                f"and {folder} has none either. Reinstall newsflash "
                "(pip install --force-reinstall newsflash)."
            )
        loader = TemplateLoader(folder)
        self.env = jinja2.Environment(
            loader=loader,
            autoescape=jinja2.select_autoescape(["j2"], default_for_string=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
        )
        text_env = jinja2.Environment(
            loader=loader,
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=True,
        )
        self.text_env = text_env
        for env in (self.env, self.text_env):
            env.filters["human_date"] = human_date
            env.filters["markdown"] = inline_markdown
            env.filters["markdown_text"] = markdown_text
            env.filters["wrap_text"] = wrap_text

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
        try:
            source = self.env.get_template(HTML_TEMPLATE).render(ctx)
            text = self.text_env.get_template(TEXT_TEMPLATE).render(ctx)
        except jinja2.TemplateError as e:
            where = f"{getattr(e, 'filename', '') or 'templates'}:{getattr(e, 'lineno', '')}"
            raise RenderError(
                f"{where}: template error: {e}. Fix the template, or delete your copy "
                "in templates/ to use newsflash's own."
            ) from e
        html = to_html(source)
        size_cfg = self.config.model.build
        checks = run_checks(html, warn_kb=size_cfg.size_warn_kb, limit_kb=size_cfg.size_limit_kb)
        return RenderedEmail(
            edition.id, ctx["subject"], ctx["preheader"], source, html, text, tuple(checks)
        )


def to_html(source: str) -> str:
    """MJML to inlined HTML, offline."""
    try:
        raw = mjml.mjml2html(source, fonts={}, disable_comments=True)
    except Exception as e:  # mjml-python raises a bare exception type from Rust
        raise RenderError(
            f"MJML could not be rendered: {e}. Check your copies in templates/, or delete "
            "them to use newsflash's own."
        ) from e
    # premailer keeps a doctype only if it matches lxml's spelling exactly ('<!DOCTYPE html>');
    # MRML writes '<!doctype html>', which premailer dropped, leaving the email in quirks mode.
    raw = _DOCTYPE.sub("<!DOCTYPE html>", raw, count=1)
    # MJML's own reset rules (table/td/img/p/body) belong in <head>, as MJML leaves them:
    # inlined onto every cell they made the HTML ~14% larger and premailer ~35% slower.
    raw = _MJML_RESET.sub(r'<style type="text/css" data-premailer="ignore">\1', raw, count=1)
    # MJML's role="article" wrapper is the email; opened alone (browser, preview) the page
    # still needs a main landmark around it, or a screen reader user has no way in.
    raw = _BODY.sub(r'\1<div role="main">\2</div>\3', raw, count=1)
    return str(
        Premailer(
            raw,
            allow_network=False,
            cssutils_logging_level=logging.CRITICAL,
            remove_classes=False,
            keep_style_tags=False,
            strip_important=False,
            disable_validation=True,
            # premailer would copy the inlined `width:100%` of an image over MJML's pixel
            # width attribute; Outlook for Windows sizes images by that attribute alone.
            disable_basic_attributes=["width", "height"],
        ).transform(pretty_print=False)
    )
