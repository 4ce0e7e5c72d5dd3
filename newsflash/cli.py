"""The command line: parses, calls the library, prints. No logic lives here.

Every expected failure is a NewsflashError, printed as one clear line with exit code 1 (usage
errors exit 2); a traceback appears only with --debug.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from newsflash.config import Config, load_config
from newsflash.errors import NewsflashError
from newsflash.items import FIELDS, Problem

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


class State:
    def __init__(self, config_path: Path, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def handled(fn: F) -> F:
    """Turn NewsflashError into one line and exit 1; keep tracebacks for --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NewsflashError as e:
            ctx = click.get_current_context()
            if ctx.find_object(State) and ctx.find_object(State).debug:  # type: ignore[union-attr]
                raise
            for line in str(e).splitlines() or ["error"]:
                err_console.print(f"[red]error:[/] {line}", soft_wrap=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


pass_state = click.make_pass_decorator(State)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("config.toml"),
    show_default=True,
    help="The newsletter's config.toml; paths in it are relative to its folder.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="newsflash")
@click.pass_context
def main(ctx: click.Context, config_path: Path, debug: bool) -> None:
    """newsflash: the monthly partner newsletter, from item files to partners' inboxes.

    \b
    Contributors drop one Markdown file per item into submissions/ (see docs/contributors.md).
    The secretariat checks, builds and reviews an edition, then sends it:
      newsflash check              validate config, item files and the partner list
      newsflash build 2022-02      render build/2022-02/ (email.html, email.txt, preview.eml ...)
      newsflash new wg1            scaffold an item file for a section
    """
    ctx.obj = State(config_path, debug)


def print_problems(problems: list[Problem] | tuple[Problem, ...]) -> None:
    for p in problems:
        colour = "red" if p.severity == "error" else "yellow"
        where = p.path + (f":{p.line}" if p.line else "")
        field = f"[bold]{p.field}[/]: " if p.field else ""
        console.print(f"[{colour}]{p.severity}[/] {where}: {field}{p.message}", soft_wrap=True)


@main.command()
@pass_state
@handled
def check(state: State) -> None:
    """Validate config.toml, every item file and subscribers.csv; report every problem at once.

    Exits 1 if any item file or the partner list has an error.
    """
    from newsflash import pipeline

    config = state.config
    loaded = pipeline.load(config)
    console.print(f"[bold]config[/] {config.path}: ok")
    console.print(
        f"[bold]items[/] {len(loaded.items)} valid, {len(loaded.failed)} with errors "
        f"in {config.submissions_dir}"
    )
    print_problems(loaded.problems)
    failed = bool(loaded.errors)
    failed |= _check_subscribers(config)
    if failed:
        sys.exit(1)


def _check_subscribers(config: Config) -> bool:
    """Print the partner list's summary line and problems; True if it has errors."""
    try:
        from newsflash.subscribers import load_subscribers
    except ImportError:  # pragma: no cover - during development only
        return False
    sl = load_subscribers(config.subscribers_path)
    counts = sl.counts()
    audience = sl.audience(config.model.audience.segments)
    console.print(
        f"[bold]subscribers[/] {counts.get('total', 0)} rows, "
        f"{len(audience)} in the audience, {len(sl.problems)} problem(s)"
    )
    for p in sl.problems:
        colour = "red" if p.severity == "error" else "yellow"
        console.print(f"[{colour}]{p}[/]", soft_wrap=True)
    return any(p.severity == "error" for p in sl.problems)


@main.command()
@click.argument("edition", required=False)
@click.option("--allow-clip", is_flag=True, help="Write the build even if Gmail would clip it.")
@pass_state
@handled
def build(state: State, edition: str | None, allow_clip: bool) -> None:
    """Render EDITION (YYYY-MM; default: this month) into build/EDITION/.

    Writes email.html, email.txt, email.mjml (the intermediate MJML), preview.eml (the full
    message with sample personalisation) and manifest.json. Broken or left-out items are
    listed with the reason; exit 1 if an item file has errors or a check fails.
    """
    from newsflash import pipeline

    config = state.config
    edition_id = edition or pipeline.current_edition_id(config)
    result = pipeline.build_edition(config, edition_id)
    e = result.edition
    print_problems(result.load.problems)
    table = Table(title=f"{e.title}  (No. {e.number}, {e.month})", title_justify="left")
    table.add_column("section")
    table.add_column("item")
    for s in e.sections:
        for i in s.items:
            table.add_row(s.title, f"{i.title}  [dim]{i.key}[/]")
    console.print(table)
    for lo in e.left_out:
        console.print(f"[yellow]left out[/] {lo.key}: {lo.reason}", soft_wrap=True)
    for c in result.email.checks:
        colour = {"ok": "green", "warning": "yellow", "error": "red"}[c.level]
        console.print(f"[{colour}]{c.level}[/] {c.name}: {c.message}", soft_wrap=True)
    out = pipeline.write_build(config, result, allow_clip=allow_clip)
    console.print(f"[green]built[/] {out}/ (subject: {result.email.subject})", soft_wrap=True)
    if result.load.errors:
        console.print("[red]some item files have errors and were left out; see above.[/]")
        sys.exit(1)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "item"


@main.command()
@click.argument("section")
@click.option("--title", default="", help="The item's headline.")
@click.option("--date", "date_", default=None, help="YYYY-MM-DD (default: today).")
@pass_state
@handled
def new(state: State, section: str, title: str, date_: str | None) -> None:
    """Scaffold an item file for SECTION in submissions/ and print its path."""
    from newsflash.items import parse_item
    from newsflash.scaffold import item_template

    config = state.config
    if section not in config.section_keys:
        raise NewsflashError(
            f"unknown section '{section}'; valid sections: {', '.join(config.section_keys)}."
        )
    day = date_ or dt.date.today().isoformat()
    text = item_template(section, title or "Your headline here", day)
    name = f"{day}-{_slug(title or section)}.md"
    path = config.submissions_dir / name
    if path.exists():
        raise NewsflashError(f"{path} exists already; pass another --title.")
    _, problems = parse_item(text.encode(), name, config.section_keys)
    if any(p.severity == "error" for p in problems):  # the scaffold itself must be valid
        raise NewsflashError("; ".join(str(p) for p in problems))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(f"[green]created[/] {path}")
    console.print(f"Fields: {', '.join(FIELDS)}. See docs/contributors.md.", soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    main()
