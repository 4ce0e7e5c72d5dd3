"""The rendering chain itself: Jinja2 -> MJML (mjml-python) -> CSS inlined (premailer), offline.

Kept apart from render.py, which decides *whether* to render: a build whose email is already
cached (render.Renderer) never imports Jinja2, mjml-python, premailer, cssutils or lxml, which
were most of a cold `newsflash build`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import jinja2

from newsflash.content import inline_markdown, markdown_text, wrap_text
from newsflash.errors import RenderError
from newsflash.months import human_date
from newsflash.render_inline import IncrementalInliner, inline_whole
from newsflash.render_memo import keep_output, memo_plan
from newsflash.render_splice import Splicer, mjml_html
from newsflash.template_cache import KeptTemplates

_DOCTYPE = re.compile(r"^\s*<!doctype html>", re.IGNORECASE)
_MJML_RESET = re.compile(r'<style type="text/css">(\s*#outlook a\s*\{)')
_BODY = re.compile(r"(<body[^>]*>)(.*)(</body>)", re.DOTALL)


class TemplateLoader(jinja2.BaseLoader):
    """The workspace's templates/ first, then the package's: one file overrides one file.

    A jinja ChoiceLoader would keep serving a package template from its cache after the
    workspace gains a file of that name, so a long-running preview or scheduler would go on
    ignoring the new override; here a package template is up to date only while the workspace
    has no file of its name. An absent workspace folder is fine: the package's design is used
    whole."""

    def __init__(self, folder: Path, package: Path, *, memo: bool = True) -> None:
        self.folder = folder
        self.own = jinja2.FileSystemLoader(folder)
        self.package = jinja2.FileSystemLoader(package)
        self.memo = memo
        # While a render runs, a token: a template found up to date once in it is not
        # checked again (two stats for each of an edition's forty-odd includes)
        self.rendering: object | None = None

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        """The compiled template, kept by what it reads where that is exact (render_memo); a
        changed file is loaded again as a new template with an empty memo.

        jinja2.BaseLoader.load, with the source read once: the memo's plan is made from the
        very text compiled (a second read could find a save made in between, and key the
        template's output by the names of another text)."""
        source, filename, uptodate = self.get_source(environment, name)
        bcc = environment.bytecode_cache
        bucket = None if bcc is None else bcc.get_bucket(environment, name, filename, source)
        code = None if bucket is None else bucket.code
        if code is None:
            code = environment.compile(source, name, filename)
            if bcc is not None and bucket is not None:
                bucket.code = code
                bcc.set_bucket(bucket)
        template = environment.template_class.from_code(
            environment, code, {} if globals is None else globals, uptodate
        )
        if self.memo:
            plan = memo_plan(environment, source, name)
            if plan is not None:
                keep_output(environment, template, plan)
        return template

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            source, filename, uptodate = self.own.get_source(environment, template)
            return source, filename, self._once_a_render(uptodate)
        except jinja2.TemplateNotFound:
            pass
        source, filename, uptodate = self.package.get_source(environment, template)
        own = self.folder / template

        def fresh() -> bool:
            return not own.is_file() and (uptodate is None or uptodate())

        return source, filename, self._once_a_render(fresh)

    def _once_a_render(self, uptodate: Callable[[], bool] | None) -> Callable[[], bool] | None:
        """`uptodate`, answered from its last True within the same render: the templates are
        those of the render's start, and a file changed since is loaded by the next."""
        if uptodate is None:
            return None
        seen: list[object] = [None]

        def checked() -> bool:
            token = self.rendering
            if token is not None and seen[0] is token:
                return True
            fresh = uptodate()
            seen[0] = token if fresh else None
            return fresh

        return checked


class Templates:
    """The HTML (autoescaped) and plain-text environments over one loader, compiled once and
    reloaded when a template file changes."""

    def __init__(self, folder: Path, package: Path, *, memo: bool = True) -> None:
        self.loader = loader = TemplateLoader(folder, package, memo=memo)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "auto_reload": True,
        }
        self.html = jinja2.Environment(
            autoescape=jinja2.select_autoescape(["j2"], default_for_string=True),
            bytecode_cache=KeptTemplates("html"),
            **common,
        )
        self.text = jinja2.Environment(
            autoescape=False,
            keep_trailing_newline=True,
            bytecode_cache=KeptTemplates("text"),
            **common,
        )
        for env in (self.html, self.text):
            env.filters["human_date"] = human_date
            env.filters["markdown"] = inline_markdown
            env.filters["markdown_text"] = markdown_text
            env.filters["wrap_text"] = wrap_text
        self.inliner = IncrementalInliner()
        self.splicer = Splicer()

    def render(self, html_name: str, text_name: str, ctx: dict[str, Any]) -> tuple[str, str, str]:
        """The MJML source, its HTML and the plain text; a template fault names its file and
        line."""
        self.loader.rendering = token = object()
        try:
            source = self.html.get_template(html_name).render(ctx)
            text = self.text.get_template(text_name).render(ctx)
        except jinja2.TemplateError as e:
            where = f"{getattr(e, 'filename', '') or 'templates'}:{getattr(e, 'lineno', '')}"
            raise RenderError(
                f"{where}: template error: {e}. Fix the template, or delete your copy "
                "in templates/ to use newsflash's own."
            ) from e
        finally:
            if self.loader.rendering is token:
                self.loader.rendering = None
        return source, to_html(source, self.inliner, self.splicer), text


def may_float(raw: str) -> bool:
    """`"float" in raw.lower()`, in a third of its time: no character but the ASCII letters
    lowers to one of f, l, o, a, t (tests/test_render_warm.py checks all of Unicode), and in
    UTF-8 no other character holds an ASCII byte, so bytes.lower() (ASCII only) says the same."""
    return b"float" in raw.encode("utf-8", "surrogatepass").lower()


def to_html(
    source: str, inliner: IncrementalInliner | None = None, splicer: Splicer | None = None
) -> str:
    """MJML to inlined HTML, offline; with `inliner` and `splicer`, MJML and premailer run
    only over what changed since their last email."""
    try:
        raw = splicer.render(source) if splicer is not None else mjml_html(source)
    except Exception as e:  # mjml-python raises a bare exception type from Rust
        raise RenderError(
            f"MJML could not be rendered: {e}. Check your copies in templates/, or delete "
            "them to use newsflash's own."
        ) from e
    # premailer keeps a doctype only if it matches lxml's spelling exactly ('<!DOCTYPE html>');
    # MRML writes '<!doctype html>', which premailer dropped, leaving the email in quirks mode.
    doctype = _DOCTYPE.match(raw)  # match, not sub: sub tried every position of the email
    raw = "<!DOCTYPE html>" + raw[doctype.end() :] if doctype else raw
    # MJML's own reset rules (table/td/img/p/body) belong in <head>, as MJML leaves them:
    # inlined onto every cell they made the HTML ~14% larger and premailer ~35% slower.
    raw = _MJML_RESET.sub(r'<style type="text/css" data-premailer="ignore">\1', raw, count=1)
    # MJML's role="article" wrapper is the email; opened alone (browser, preview) the page
    # still needs a main landmark around it, or a screen reader user has no way in.
    raw = _BODY.sub(r'\1<div role="main">\2</div>\3', raw, count=1)
    # premailer parses every image's final style again to copy a float into align=; an image
    # can only float if the word (or a CSS escape that could spell it) is in the HTML at all.
    floats = "\\" in raw or may_float(raw)
    if inliner is None:
        return inline_whole(raw, floats=floats)
    return inliner.inline(raw, floats=floats)
