"""The contributors' guide as a page of the web archive, so a notice can link to it.

Contributors never see the repository: the notices they get (the call for items, the intake
check) link to ``{web_base_url}/contributors/``, which `newsflash archive` writes from the
workspace's ``docs/contributors.md`` (or, in a workspace without one, the guide that ships
with newsflash). The guide's sample list of sections, between ``<!-- sections -->`` and
``<!-- /sections -->``, is replaced by this newsletter's own sections from config.toml.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from newsflash.config import Config

__all__ = ["GUIDE_PAGE", "guide_html", "guide_source", "guide_url", "site_env"]

GUIDE_PAGE = "contributors/index.html"
GUIDE_FILE = Path("docs") / "contributors.md"
_SECTIONS = re.compile(r"<!-- sections -->.*?<!-- /sections -->", re.DOTALL)


def site_env() -> jinja2.Environment:
    """The templates of site/'s pages, which share site_base.html.j2."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newsflash.web", ""),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def guide_url(config: Config) -> str:
    """Where contributors read the guide once `newsflash archive` is published."""
    return config.model.newsletter.web_base_url.rstrip("/") + "/contributors/"


def guide_source(config: Config) -> str:
    """The workspace's own guide if it has one, else the one shipped with newsflash."""
    own = config.path.parent / GUIDE_FILE
    if own.is_file():
        return own.read_text(encoding="utf-8")
    return resources.files("newsflash.web").joinpath("contributors.md").read_text(encoding="utf-8")


def _sections_table(config: Config) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = [f"| `{cell(s.key)}` | {cell(s.title)} |" for s in config.model.sections]
    return "\n".join(["| Key | Section |", "|---|---|", *rows])


def guide_html(config: Config) -> str:
    """The whole page; the guide's own HTML, if any, is shown as text, never run."""
    text = _SECTIONS.sub(lambda _: _sections_table(config), guide_source(config))
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return (
        site_env()
        .get_template("contributors_page.html.j2")
        .render(newsletter=config.model.newsletter, guide=Markup(body), root="../")
    )
