"""`newsflash init` and `newsflash edition new`: starting a newsletter, and starting a month.

`edition` is a group (`newsflash edition new 2022-03`) rather than a verb of its own because
the edition is the thing the secretariat handles every month: the group names it once and has
room for what else is done to one (listing, retitling) without crowding the top level.
The work is in workspace.py and config_edit.py, imported inside the commands on purpose: the
calendar (APScheduler) and tomlkit cost start-up time that `newsflash --help` should not pay.
"""

from __future__ import annotations

from pathlib import Path

import click

from newsflash.cli.common import State, console, escape, handled, pass_state


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--templates",
    is_flag=True,
    help="Also copy newsflash's email templates into FOLDER/templates/ to customise them.",
)
@handled
def init(folder: Path, templates: bool) -> None:
    """Make a new newsletter workspace in FOLDER: a commented config.toml, submissions/ with
    one example item and a subscribers.csv header. It checks and builds at once.

    Refuses a FOLDER that already has a config.toml; never overwrites a file.
    """
    from newsflash.workspace import init_workspace  # deferred: APScheduler's start-up time

    made = init_workspace(folder, templates=templates)
    for path in made.written:
        console().print(f"[green]created[/] {escape(str(path))}", soft_wrap=True)
    for path in made.kept:
        console().print(
            f"[yellow]kept[/] {escape(str(path))} (it was there already)", soft_wrap=True
        )
    console().print(
        f"Edition No. 1 is {made.first_edition}. Next: cd {folder}, set the [newsletter] and "
        "[sender] keys in config.toml, then `newsflash check` and `newsflash build`.",
        soft_wrap=True,
        markup=False,
    )


@click.group()
def edition() -> None:
    """Start and set up an edition (config.toml [editions."YYYY-MM"])."""


@edition.command("new")
@click.argument("edition_id", metavar="EDITION")
@click.option("--title", default="", help="The edition's headline (default: the month's name).")
@click.option("--preheader", default="", help="Preview text shown after the subject.")
@click.option("--editorial", default="", help="Opening paragraphs (Markdown).")
@pass_state
@handled
def new_edition(state: State, edition_id: str, title: str, preheader: str, editorial: str) -> None:
    """Add [editions."EDITION"] (title, preheader, editorial) to config.toml, keeping every
    comment and the layout. Refuses an edition that has one already."""
    from newsflash import config_edit  # deferred: tomlkit's start-up time
    from newsflash.months import month_label  # deferred: zoneinfo's start-up, for --help

    config_edit.checked_edition_id(state.config, edition_id)  # a bad id: one message, first
    config = config_edit.add_edition(
        state.config_path,
        edition_id,
        config_edit.edition_table(title or month_label(edition_id), preheader, editorial),
    )
    table = escape(f'[editions."{edition_id}"]')
    console().print(
        f"[green]added[/] {table} to {escape(str(config.path))}; edit its title, preheader "
        f"and editorial there, then `newsflash build {edition_id}`.",
        soft_wrap=True,
    )
