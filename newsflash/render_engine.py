"""The rendering chain itself: Jinja2 -> MJML (mjml-python) -> CSS inlined (premailer), offline.

Kept apart from render.py, which decides *whether* to render: a build whose email is already
cached (render.Renderer) never imports Jinja2, mjml-python, premailer, cssutils or lxml, which
were most of a cold `newsflash build`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import mjml
from premailer import Premailer

from newsflash.content import inline_markdown, markdown_text, wrap_text
from newsflash.errors import RenderError
from newsflash.months import human_date

_DOCTYPE = re.compile(r"^\s*<!doctype html>", re.IGNORECASE)
_MJML_RESET = re.compile(r'<style type="text/css">(\s*#outlook a\s*\{)')
_BODY = re.compile(r"(<body[^>]*>)(.*)(</body>)", re.DOTALL)
_MAY_FLOAT = re.compile(r"float|\\", re.IGNORECASE)


class TemplateLoader(jinja2.BaseLoader):
    """The workspace's templates/ first, then the package's: one file overrides one file.

    A jinja ChoiceLoader would keep serving a package template from its cache after the
    workspace gains a file of that name, so a long-running preview or scheduler would go on
    ignoring the new override; here a package template is up to date only while the workspace
    has no file of its name. An absent workspace folder is fine: the package's design is used
    whole."""

    def __init__(self, folder: Path, package: Path) -> None:
        self.folder = folder
        self.own = jinja2.FileSystemLoader(folder)
        self.package = jinja2.FileSystemLoader(package)

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


class Templates:
    """The HTML (autoescaped) and plain-text environments over one loader, compiled once and
    reloaded when a template file changes."""

    def __init__(self, folder: Path, package: Path) -> None:
        loader = TemplateLoader(folder, package)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "auto_reload": True,
        }
        self.html = jinja2.Environment(
            autoescape=jinja2.select_autoescape(["j2"], default_for_string=True), **common
        )
        self.text = jinja2.Environment(autoescape=False, keep_trailing_newline=True, **common)
        for env in (self.html, self.text):
            env.filters["human_date"] = human_date
            env.filters["markdown"] = inline_markdown
            env.filters["markdown_text"] = markdown_text
            env.filters["wrap_text"] = wrap_text

    def render(self, html_name: str, text_name: str, ctx: dict[str, Any]) -> tuple[str, str, str]:
        """The MJML source, its HTML and the plain text; a template fault names its file and
        line."""
        try:
            source = self.html.get_template(html_name).render(ctx)
            text = self.text.get_template(text_name).render(ctx)
        except jinja2.TemplateError as e:
            where = f"{getattr(e, 'filename', '') or 'templates'}:{getattr(e, 'lineno', '')}"
            raise RenderError(
                f"{where}: template error: {e}. Fix the template, or delete your copy "
                "in templates/ to use newsflash's own."
            ) from e
        return source, to_html(source), text


class _Inliner(Premailer):  # type: ignore[misc]  # premailer ships no type hints
    """premailer, reading each distinct <style> block once instead of once per render.

    premailer caches the parsed stylesheet, but on every transform it still writes each rule's
    declarations out through cssutils, sets `!important` on each @media declaration again and
    serialises what it cannot inline: a third of a warm render, for results that depend only
    on the block's text and its place (the options are to_html's, fixed). Both are kept here
    by block and place, exactly as premailer made them the first time (tests/test_golden.py
    holds the output byte for byte)."""

    blocks: ClassVar[dict[tuple[str, int], tuple[tuple[Any, ...], str | None]]] = {}
    most_blocks: ClassVar[int] = 256  # templates whose CSS varies must not grow it for ever

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], Any]:
        key = (css_body, ruleset_index)
        entry = self.blocks.get(key)  # one lookup: another thread may clear the dict
        if entry is None:
            rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
            entry = (tuple(rules), super()._css_rules_to_string(leftover) if leftover else None)
            if len(self.blocks) >= self.most_blocks:
                self.blocks.clear()
            self.blocks[key] = entry
        rules_kept, css_kept = entry
        return list(rules_kept), _Leftover(css_kept) if css_kept is not None else []

    def _css_rules_to_string(self, rules: Any) -> str:
        if isinstance(rules, _Leftover):
            return rules.css
        text: str = super()._css_rules_to_string(rules)
        return text


class _Leftover(list[Any]):
    """The leftover rules of one <style> block, already written out (non-empty, so premailer
    keeps the block)."""

    def __init__(self, css: str) -> None:
        super().__init__([css])
        self.css = css


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
    # premailer parses every image's final style again to copy a float into align=; an image
    # can only float if the word (or a CSS escape that could spell it) is in the HTML at all.
    floats = bool(_MAY_FLOAT.search(raw))
    return str(
        _Inliner(
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
            align_floating_images=floats,
        ).transform(pretty_print=False)
    )
