"""What every command shares: the lazily loaded config, one-line errors, the consoles.

Command modules import from here, never from `newsflash.cli` itself, so the package's
`__init__` can import each of them by name, when its command is asked for, without a cycle.
rich is loaded on the first print, not here: `newsflash --help` prints through click alone,
and rich's import was a third of its start-up.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click.shell_completion import CompletionItem

from newsflash.errors import NewsflashError

if TYPE_CHECKING:  # types only: `newsflash --help` loads no config model, item parser or rich
    from rich.console import Console
    from rich.table import Table

    from newsflash.config import Config
    from newsflash.items import Problem
    from newsflash.schedule.which_edition import Chosen

# The ledgers a command may name, for click's choices at import time; tests/test_cli.py checks
# them against state/ledgers.LEDGER_FILES, which `--help` should not have to import.
LEDGER_CHOICES = ("sendgrid", "outbox", "sendgrid-sandbox")

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def console() -> Console:
    """The terminal's standard output, made on the first print."""
    from rich.console import Console  # deferred: rich's start-up time (module docstring)

    return Console(highlight=False)


@functools.cache
def err_console() -> Console:
    """Standard error, for the one-line errors."""
    from rich.console import Console  # deferred: rich's start-up time (module docstring)

    return Console(stderr=True, highlight=False)


def escape(text: str) -> str:
    """rich.markup.escape: text shown as written, never read as [markup]."""
    from rich.markup import escape as rich_escape  # deferred: rich's start-up time

    return rich_escape(text)


def table(title: str, **options: Any) -> Table:
    """A rich table with its title on the left, as every command prints them."""
    from rich.table import Table  # deferred: rich's start-up time (module docstring)

    return Table(title=title, title_justify="left", **options)


class State:
    def __init__(self, config_path: Path, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from newsflash.config_cache import load_cached  # deferred: pydantic's start-up

            self._config = load_cached(self.config_path)
        return self._config


def fail(error: NewsflashError) -> NoReturn:
    """One red line per line of the message and exit 1; the traceback only under --debug."""
    ctx = click.get_current_context()
    state = ctx.find_object(State)
    if state is not None and state.debug:
        raise error
    for line in str(error).splitlines() or ["error"]:
        err_console().print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
    sys.exit(1)


def handled(fn: F) -> F:
    """Turn NewsflashError into one line and exit 1; keep tracebacks for --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NewsflashError as e:
            fail(e)

    return wrapper  # type: ignore[return-value]


pass_state = click.make_pass_decorator(State)


def counts_table(title: str) -> Table:
    """A label-and-number table without headers, as `send` and `status` print their counts."""
    counts = table(title, show_header=False)
    counts.add_column("")
    counts.add_column("", justify="right")
    return counts


def print_problems(problems: list[Problem] | tuple[Problem, ...]) -> None:
    for p in problems:
        colour = "red" if p.severity == "error" else "yellow"
        where = p.path + (f":{p.line}" if p.line else "")
        field = f"[bold]{escape(p.field)}[/]: " if p.field else ""
        console().print(
            f"[{colour}]{p.severity}[/] {escape(where)}: {field}{escape(p.message)}", soft_wrap=True
        )


def _config_for_completion(ctx: click.Context) -> Config | None:
    """The config the command line names, for completing its words; None if it will not
    load (completion must never print an error into the shell)."""
    from newsflash.config_cache import load_cached  # deferred: pydantic's start-up

    path = ctx.find_root().params.get("config_path") or Path("config.toml")
    try:
        return load_cached(Path(path))
    except (NewsflashError, OSError):
        return None


def _choose(config: Config, given: str | None) -> Chosen:
    """which_edition.choose_edition, loaded only when a command takes an edition."""
    from newsflash.schedule.which_edition import choose_edition  # deferred: APScheduler

    return choose_edition(config, given)


def complete_sections(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """The section keys of config.toml, for `newsflash new <TAB>`."""
    config = _config_for_completion(ctx)
    keys = config.section_keys if config else ()
    return [k for k in keys if k.startswith(incomplete)]


def complete_editions(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The coming edition first, then every edition config.toml has a table for."""
    config = _config_for_completion(ctx)
    if config is None:
        return []
    try:
        coming = _choose(config, None).id
    except NewsflashError:  # a calendar that will not compute: `check` says why, not TAB
        return []
    ids = [coming, *sorted(set(config.model.editions) - {coming}, reverse=True)]
    return [
        CompletionItem(i, help="the coming edition" if i == coming else None)
        for i in ids
        if i.startswith(incomplete)
    ]


def _edition(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """EDITION as the command receives it: the id given, checked, or the coming one, named
    on the terminal so a default is never a surprise. While completing (no State yet) the
    value is left as it is."""
    state = ctx.find_object(State)
    if state is None or ctx.resilient_parsing:
        return value
    return chosen_edition(state, value)


def chosen_edition(state: State, value: str | None) -> str:
    """The edition named, checked, or the coming one, named on the terminal; a wrong id is
    one error line and exit 1."""
    try:
        chosen = _choose(state.config, value)
    except NewsflashError as e:
        fail(e)
    if chosen.defaulted:
        console().print(escape(chosen.describe()), soft_wrap=True)
    return chosen.id


edition_argument = click.argument(
    "edition", required=False, callback=_edition, shell_complete=complete_editions
)
"""EDITION for every command that takes one: optional, the coming edition by default."""

edition_as_given = click.argument("edition", required=False, shell_complete=complete_editions)
"""EDITION as typed, for a command that looks at it before loading config.toml (`build`'s
up-to-date check); the command then calls `chosen_edition` itself."""
