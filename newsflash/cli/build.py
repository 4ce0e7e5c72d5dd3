"""`newsflash check`, `build` and `new`: the edition from item files, before any send.

The pipeline is imported inside `check` and `build` on purpose: it loads the config model, the
item parser and the rendering code, which `newsflash build --help` would otherwise pay for,
and which an up-to-date `newsflash build EDITION` (build_stamp) never needs.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

import click

from newsflash.cli.common import (
    State,
    chosen_edition,
    complete_sections,
    console,
    edition_as_given,
    escape,
    handled,
    pass_state,
    print_problems,
    table,
)
from newsflash.errors import BuildError, ConfigError, NewsflashError

if TYPE_CHECKING:
    from newsflash.build_stamp import Watch
    from newsflash.config import Config
    from newsflash.linkcheck.result import LinkReport
    from newsflash.pipeline import BuiltEdition


@click.command()
@click.option(
    "--links",
    "links",
    is_flag=True,
    help="Also fetch every link of the coming edition and report the dead ones.",
)
@pass_state
@handled
def check(state: State, links: bool) -> None:
    """Validate config.toml, its calendar, every item file and subscribers.csv; report every
    problem at once.

    With --links, also fetch every link of the coming edition (HEAD, else GET; recent
    working results come from state/links.sqlite). Exits 1 if any item file, a calendar job
    or the partner list has an error, or a link is dead.
    """
    from newsflash import pipeline  # deferred: the renderer's start-up time (module docstring)
    from newsflash.edition import title_clashes  # deferred: start-up time

    config = state.config
    loaded = pipeline.check_items(config)
    console().print(f"[bold]config[/] {config.path}: ok")
    console().print(
        f"[bold]items[/] {len(loaded.items)} valid, {len(loaded.failed)} with errors "
        f"in {config.submissions_dir}"
    )
    clashes = title_clashes(loaded.items)
    print_problems([*loaded.problems, *clashes])
    failed = bool(loaded.errors) or bool(clashes)
    failed |= _check_calendar(config)
    failed |= _check_subscribers(config)
    if links:
        from newsflash.schedule.followups import coming_links  # deferred: APScheduler, httpx

        failed |= _print_links(*coming_links(config))
    if failed:
        sys.exit(1)


def _check_calendar(config: Config) -> bool:
    """Print whether each [schedule] job's cron fields make a calendar; True if one does not.
    A build of a named edition no longer reads them, so this is where a typo shows first."""
    from newsflash.schedule.timetable import configured_triggers  # deferred: APScheduler

    try:
        jobs = configured_triggers(config)
    except ConfigError as e:
        console().print(f"[bold]calendar[/] [red]error:[/] {escape(str(e))}", soft_wrap=True)
        return True
    console().print(f"[bold]calendar[/] {len(jobs)} job(s): ok")
    return False


def _check_subscribers(config: Config) -> bool:
    """Print the partner list's summary line and problems; True if it has errors."""
    from newsflash.subscribers import load_subscribers  # deferred: start-up time

    sl = load_subscribers(config.subscribers_path)
    counts = sl.counts()
    audience = sl.audience(config.model.audience.segments)
    console().print(
        f"[bold]subscribers[/] {counts.get('total', 0)} rows, "
        f"{len(audience)} in the audience, {len(sl.problems)} problem(s)"
    )
    for p in sl.problems:
        colour = "red" if p.severity == "error" else "yellow"
        console().print(f"[{colour}]{escape(str(p))}[/]", soft_wrap=True)
    return any(p.severity == "error" for p in sl.problems)


def _print_links(edition_id: str, report: LinkReport) -> bool:
    """Print the link check of the coming edition; True if a link is dead."""
    console().print(
        f"[bold]links[/] {len(report.links)} in edition {edition_id} "
        f"({report.distinct} distinct: {report.fetched} fetched, {report.from_cache} from the "
        f"cache), {len(report.dead)} dead"
    )
    for dead in report.dead:
        console().print(f"[red]dead link[/] {escape(str(dead))}", soft_wrap=True)
    return bool(report.dead)


@click.command()
@edition_as_given
@click.option("--allow-clip", is_flag=True, help="Write the build even if Gmail would clip it.")
@pass_state
@handled
def build(state: State, edition: str | None, allow_clip: bool) -> None:
    """Render EDITION (YYYY-MM; default: the coming one by the schedule) into build/EDITION/.

    Writes email.html, email.txt, email.mjml (the intermediate MJML), preview.eml (the full
    message with sample personalisation) and manifest.json. Broken or left-out items are
    listed with the reason; exit 1 if an item file has errors, a check fails or no item is
    ready for the edition. An edition without a title in config.toml, or far from the
    calendar and every item file, is warned about.
    """
    from newsflash import build_stamp  # deferred: `build --help` loads click alone

    request = build_stamp.Request.named(
        state.config_path, edition, allow_clip=allow_clip, debug=state.debug
    )
    kept = build_stamp.replay(request) if request is not None else None
    if kept is not None:
        code = kept.play()
    else:
        code = _full_build(state, edition, allow_clip, build_stamp.Watch(request))
    if code:
        sys.exit(code)


def _full_build(state: State, edition: str | None, allow_clip: bool, watch: Watch) -> int:
    """The build, watched for its stamp (build_stamp: what it read, printed and wrote)."""
    edition_id = chosen_edition(state, edition)
    config = state.config
    watch.start(config, edition_id)
    with watch.recording():
        code, clock_free = _build_and_print(config, edition_id, allow_clip)
    watch.finish(code, clock_free=clock_free)
    return code


def _build_and_print(config: Config, edition_id: str, allow_clip: bool) -> tuple[int, bool]:
    """Build and write the edition, printing what it holds; the exit code, and whether the
    warnings left today out of it (an edition an item file points at)."""
    from newsflash import pipeline  # deferred: the renderer's start-up time (module docstring)
    from newsflash.schedule import which_edition  # deferred: APScheduler
    from newsflash.state import ledgers  # deferred: the renderer's start-up time

    result = ledgers.build_edition(config, edition_id, pipeline.cached_renderer(config))
    e = result.edition
    print_problems(result.load.problems)
    for note in which_edition.edition_warnings(config, edition_id, result.load.items):
        console().print(f"[yellow]warning[/] {escape(note)}", soft_wrap=True)
    contents = table(f"{e.title}  (No. {e.number}, {e.month})")
    contents.add_column("section")
    contents.add_column("item")
    for s in e.sections:
        for i in s.items:
            contents.add_row(escape(s.title), f"{escape(i.title)}  [dim]{escape(i.key)}[/]")
    console().print(contents)
    _print_left_out(result)
    for c in result.email.checks:
        colour = {"ok": "green", "warning": "yellow", "error": "red"}[c.level]
        console().print(f"[{colour}]{c.level}[/] {c.name}: {escape(c.message)}", soft_wrap=True)
    if not e.items:
        raise BuildError(
            f"edition {edition_id} has no items, so nothing was built: write 'status: ready' "
            f"in an item file (and 'edition: \"{edition_id}\"' to pin it here), or "
            "`newsflash new SECTION` for a new one."
        )
    out = pipeline.write_build(config, result, allow_clip=allow_clip)
    console().print(f"[green]built[/] {out}/ (subject: {result.email.subject})", soft_wrap=True)
    clock_free = which_edition.near_an_item(edition_id, result.load.items)
    if result.load.errors:
        console().print("[red]some item files have errors and were left out; see above.[/]")
        return 1, clock_free
    return 0, clock_free


def _print_left_out(result: BuiltEdition) -> None:
    for lo in result.edition.left_out:
        if lo.key in result.load.failed:
            console().print(f"[yellow]left out[/] {escape(lo.key)}: invalid (errors listed above)")
            continue
        console().print(
            f"[yellow]left out[/] {escape(lo.key)}: {escape(lo.reason)}", soft_wrap=True
        )


@click.command()
@click.argument("section", shell_complete=complete_sections)
@click.option("--title", default="", help="The item's headline.")
@click.option("--date", "date_", default=None, help="YYYY-MM-DD (default: today).")
@pass_state
@handled
def new(state: State, section: str, title: str, date_: str | None) -> None:
    """Scaffold an item file for SECTION in submissions/ and print its path."""
    from newsflash.files import slug  # deferred: tempfile's start-up time, for --help
    from newsflash.item_fields import FIELDS, read_date, unknown_section  # deferred: start-up
    from newsflash.items import parse_item  # deferred: start-up time
    from newsflash.scaffold import item_template  # deferred: start-up time

    config = state.config
    if section not in config.section_keys:
        raise NewsflashError(unknown_section(section, config.section_keys))
    try:
        day = read_date(date_).isoformat() if date_ else dt.date.today().isoformat()
    except ValueError as e:
        raise NewsflashError(f"--date: {e}") from None
    text = item_template(section, title or "Your headline here", day)
    name = f"{day}-{slug(title or section, limit=60)}.md"
    path = config.submissions_dir / name
    if path.exists():
        raise NewsflashError(f"{path} exists already; pass another --title.")
    _, problems = parse_item(text.encode(), name, config.section_keys)
    if any(p.severity == "error" for p in problems):  # the scaffold itself must be valid
        raise NewsflashError("; ".join(str(p) for p in problems))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console().print(f"[green]created[/] {path}")
    console().print(f"Fields: {', '.join(FIELDS)}. See docs/contributors.md.", soft_wrap=True)
