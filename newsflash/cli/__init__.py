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
from rich.markup import escape
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
                err_console.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
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
      newsflash preview            live preview at desktop and phone widths, reloads as you edit
      newsflash approve 2022-02    approve the edition as it builds now
      newsflash send 2022-02       send it: SendGrid with SENDGRID_API_KEY set, else outbox/
      newsflash status 2022-02     where every partner stands; what to do after a crash
      newsflash schedule run       the monthly calendar: reminder, proof, send (as a service)
      newsflash archive            the web archive of sent editions in site/
      newsflash serve              one-click unsubscribes and SendGrid's event webhook
      newsflash suppressions list  who is never mailed again, and why (lift ADDRESS)

    \b
    Every command takes --help. Errors are one line and exit 1 (2 for usage errors).
    """
    ctx.obj = State(config_path, debug)


def print_problems(problems: list[Problem] | tuple[Problem, ...]) -> None:
    for p in problems:
        colour = "red" if p.severity == "error" else "yellow"
        where = p.path + (f":{p.line}" if p.line else "")
        field = f"[bold]{escape(p.field)}[/]: " if p.field else ""
        console.print(
            f"[{colour}]{p.severity}[/] {escape(where)}: {field}{escape(p.message)}", soft_wrap=True
        )


@main.command()
@pass_state
@handled
def check(state: State) -> None:
    """Validate config.toml, every item file and subscribers.csv; report every problem at once.

    Exits 1 if any item file or the partner list has an error.
    """
    from newsflash import pipeline
    from newsflash.edition import title_clashes

    config = state.config
    loaded = pipeline.check_items(config)
    console.print(f"[bold]config[/] {config.path}: ok")
    console.print(
        f"[bold]items[/] {len(loaded.items)} valid, {len(loaded.failed)} with errors "
        f"in {config.submissions_dir}"
    )
    clashes = title_clashes(loaded.items)
    print_problems([*loaded.problems, *clashes])
    failed = bool(loaded.errors) or bool(clashes)
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
        console.print(f"[{colour}]{escape(str(p))}[/]", soft_wrap=True)
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
            table.add_row(escape(s.title), f"{escape(i.title)}  [dim]{escape(i.key)}[/]")
    console.print(table)
    for lo in e.left_out:
        if lo.key in result.load.failed:
            console.print(f"[yellow]left out[/] {escape(lo.key)}: invalid (errors listed above)")
            continue
        console.print(f"[yellow]left out[/] {escape(lo.key)}: {escape(lo.reason)}", soft_wrap=True)
    for c in result.email.checks:
        colour = {"ok": "green", "warning": "yellow", "error": "red"}[c.level]
        console.print(f"[{colour}]{c.level}[/] {c.name}: {escape(c.message)}", soft_wrap=True)
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


@main.command()
@click.argument("edition", required=False)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the preview answers only for it and the loopback names.",
)
@pass_state
@handled
def preview(state: State, edition: str | None, port: int, host: str) -> None:
    """Serve a live preview of EDITION (default: this month) on http://127.0.0.1:PORT/.

    Shows the email at 600 px and 375 px, the plain text, subject, preheader, checks, items
    left out and item-file problems; rebuilds and reloads the page when an item file, a
    template or config.toml changes. Writes nothing; Ctrl-C stops it.
    """
    from newsflash.web.preview import serve

    serve(
        state.config_path,
        edition,
        port,
        echo=lambda line: console.print(line, soft_wrap=True, markup=False),
        host=host,
    )


@main.command()
@pass_state
@handled
def archive(state: State) -> None:
    """Write the web archive of sent editions to site/ (index, one page each, Atom feed).

    Each page is the edition's web version (no unsubscribe link, no greeting), built with the
    items its send recorded. Publish site/ at config.toml's web_base_url on any web server.
    """
    from newsflash.web.archive import write_site

    result = write_site(state.config)
    for note in result.notes:
        console.print(f"[yellow]note[/] {note}", soft_wrap=True, markup=True)
    for page in result.pages:
        e = page.edition
        console.print(f"  {e.id}  No. {e.number}  {e.title}", soft_wrap=True, markup=False)
    console.print(
        f"[green]wrote[/] {result.out}/ ({len(result.pages)} sent edition(s) from "
        f"{result.ledger.name}; feed.xml, index.html)",
        soft_wrap=True,
    )


# -- sending ---------------------------------------------------------------------------------


def _shorten(value: Any, limit: int = 240) -> Any:
    """A request for display: long bodies cut, only the first personalizations shown."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… [{len(value)} characters in all]"
    if isinstance(value, list):
        shown = [_shorten(v, limit) for v in value[:3]]
        if len(value) > 3:
            shown.append(f"… {len(value) - 3} more")
        return shown
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    return value


def _print_plan(report: Any) -> None:
    for key, reason in report.left_out:
        console.print(f"[yellow]left out[/] {key}: {reason}", soft_wrap=True)
    if report.subscriber_problems:
        console.print(
            f"[yellow]subscribers.csv has {report.subscriber_problems} problem(s)"
            "[/] (bad rows are skipped): see `newsflash subscribers`",
            soft_wrap=True,
        )
    console.print(
        f"Edition [bold]{report.edition_id}[/] through [bold]{report.transport}[/]: "
        f"{report.total} recipient(s), {report.already_accepted} already accepted, "
        f"{report.to_send} to send now"
        + (f" in about {report.requests} request(s)" if report.requests else "")
        + (f"; {report.uncertain} uncertain" if report.uncertain else "")
        + ".",
        soft_wrap=True,
    )


def _print_summary(report: Any) -> None:
    from newsflash.sending.send import status_lines

    table = Table(
        title=f"Edition {report.edition_id} through {report.transport}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("accepted in this run", str(report.accepted_now))
    table.add_row("accepted before", str(report.already_accepted))
    table.add_row("failed (retried by the next run)", str(report.failed))
    table.add_row("uncertain", str(report.uncertain))
    if report.skipped:
        table.add_row("left the audience since the start", str(report.skipped))
    if report.transport == "outbox":
        table.add_row("files written", f"{report.accepted_now} in outbox/{report.edition_id}/")
    else:
        table.add_row("requests", str(report.requests))
    table.add_row("[bold]total recipients[/]", f"[bold]{report.total}[/]")
    console.print(table)
    if report.stopped:
        console.print(f"[red]stopped:[/] {escape(report.stopped)}", soft_wrap=True)
    if report.status is not None:
        for line in status_lines(report.status):
            console.print(escape(line), soft_wrap=True)


@main.command()
@click.argument("edition")
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help="Send one test copy (subject starts with [TEST]) to ADDRESS; not counted.",
)
@click.option(
    "--dry-run", is_flag=True, help="Send nothing; show the counts and the first request."
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also resend recipients whose request got no answer (they may get it twice).",
)
@click.option(
    "--transport",
    type=click.Choice(["sendgrid", "outbox"]),
    default=None,
    help="Default: sendgrid when SENDGRID_API_KEY is set, else outbox (.eml files).",
)
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation on a terminal.")
@pass_state
@handled
def send(
    state: State,
    edition: str,
    to: str | None,
    dry_run: bool,
    resend_uncertain: bool,
    transport: str | None,
    yes: bool,
) -> None:
    """Send EDITION (YYYY-MM) to every subscribed partner in the audience, exactly once.

    \b
    Builds the edition, freezes the recipients in the ledger (state/), sends in batches and
    records each answer. Run it again after a crash or an outage: it resumes and never resends
    anyone accepted. Recipients whose request got no answer are "uncertain" (see `newsflash
    status`); --resend-uncertain resends them. Asks for confirmation only on a terminal.
    Exit 1 if anything failed, stopped or is uncertain.
    """
    import json
    import signal

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from newsflash import pipeline
    from newsflash.sending import send as sending

    config = state.config
    tp = sending.make_transport(config, transport, dry_run=dry_run)
    result = pipeline.build_edition(config, edition, ledger_name=sending.ledger_name_for(tp))
    print_problems(result.load.errors)
    if to:
        if dry_run:
            raise click.UsageError("--to sends a test copy; leave out --dry-run")
        report = sending.send_test(config, edition, to, tp, build=result)
        console.print(
            f"[green]test copy sent[/] to {escape(to)} through {report.transport} "
            "(subject starts with \\[TEST]; the ledger does not count it).",
            soft_wrap=True,
        )
        return
    plan = sending.send_edition(
        config, edition, transport=tp, dry_run=True, build=result, resend_uncertain=resend_uncertain
    )
    _print_plan(plan)
    if dry_run:
        if plan.first_request is not None:
            console.print("First request (nothing was sent):")
            click.echo(json.dumps(_shorten(plan.first_request), indent=2, ensure_ascii=False))
        return
    if plan.to_send == 0 and not (plan.status is not None and plan.status.in_flight):
        console.print("Nothing to send now.")
        if plan.status is not None:
            for line in sending.status_lines(plan.status):
                console.print(escape(line), soft_wrap=True)
        if plan.uncertain:
            sys.exit(1)
        return
    from newsflash.sending.approval import require_approved

    require_approved(config, edition, result)
    if sys.stdin.isatty() and not yes:
        click.confirm(
            f"Send edition {edition} to {plan.to_send} recipient(s) through {plan.transport}?",
            abort=True,
        )

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("sending", total=plan.to_send)
            report = sending.send_edition(
                config,
                edition,
                transport=tp,
                resend_uncertain=resend_uncertain,
                build=result,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except KeyboardInterrupt:
        err_console.print(
            f"[red]interrupted.[/] A batch whose answer had not come is uncertain; "
            f"see `newsflash status {edition}`, then run `newsflash send {edition}` "
            "again to resume.",
            soft_wrap=True,
        )
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(report)
    if report.stopped or report.failed or report.uncertain:
        sys.exit(1)


@main.command()
@click.argument("edition")
@click.option(
    "--transport",
    "ledger_name",
    default=None,
    type=click.Choice(["sendgrid", "outbox", "sendgrid-sandbox"]),
    help="Whose ledger to show (default: every ledger that has the edition).",
)
@click.option("--all", "show_all", is_flag=True, help="List every uncertain/failed recipient.")
@pass_state
@handled
def status(state: State, edition: str, ledger_name: str | None, show_all: bool) -> None:
    """Where every recipient of EDITION stands: counts, approval, uncertain and failed.

    Ends with what to do next (resume, resend uncertain ones, or nothing).
    """
    from newsflash import pipeline
    from newsflash.sending import send as sending
    from newsflash.state.ledger import Ledger

    config = state.config
    names = [ledger_name] if ledger_name else list(pipeline.LEDGER_FILES)
    approval = None
    shown = 0
    unfinished = False
    for name in names:
        path = pipeline.ledger_path(config, name)
        if not path.exists():
            continue
        with Ledger(path) as ledger:
            st = ledger.status(edition)
            approval = approval or ledger.approval(edition)
        if st.manifest_hash is None:
            continue
        shown += 1
        skipped = sending.skipped_count(st)
        unfinished |= bool(st.pending or st.in_flight or st.failed - skipped)
        table = Table(
            title=f"Edition {edition} — {name} ledger ({path.name})",
            title_justify="left",
            show_header=False,
        )
        table.add_column("")
        table.add_column("", justify="right")
        for label, n in (
            ("accepted", st.accepted),
            ("pending", st.pending),
            ("in flight", st.in_flight),
            ("uncertain", st.uncertain),
            ("failed", st.failed - skipped),
            ("left the audience", skipped),
            ("[bold]total[/]", st.total),
        ):
            table.add_row(label, str(n))
        table.add_row("started", st.started_at or "")
        table.add_row("finished", st.finished_at or "not yet")
        console.print(table)
        if approval is not None:
            same = "the edition sent" if approval[0] == st.manifest_hash else "ANOTHER version"
            console.print(
                f"approved by {escape(approval[2])} at {approval[1]} ({same})", soft_wrap=True
            )
        limit = None if show_all else 50
        for title, rows in (
            ("uncertain", [(e, "") for e in st.uncertain_recipients]),
            ("failed", list(st.failed_recipients)),
        ):
            if rows:
                console.print(f"[bold]{title}[/] ({len(rows)}):")
            for address, reason in rows[:limit]:
                console.print(
                    f"  {escape(address)}" + (f"  [dim]{escape(reason)}[/]" if reason else ""),
                    soft_wrap=True,
                    markup=True,
                )
            if limit is not None and len(rows) > limit:
                console.print(f"  … {len(rows) - limit} more (--all lists them)")
        for line in sending.status_lines(st):
            console.print(escape(line), soft_wrap=True)

    from newsflash.sending.approval import status_line

    try:  # approved / not approved / changed since approval (and what changed)
        console.print(f"[bold]approval[/] {escape(status_line(config, edition))}", soft_wrap=True)
    except NewsflashError as e:
        console.print(f"[bold]approval[/] unknown: {escape(str(e))}", soft_wrap=True)
    if unfinished or not shown:
        _say_if_list_unreadable(config)
    if not shown:
        if approval is not None:
            console.print(f"approved by {escape(approval[2])} at {approval[1]}", soft_wrap=True)
        console.print(
            f"Edition {edition} has not been sent through any transport. Try "
            f"`newsflash send {edition} --dry-run`.",
            soft_wrap=True,
        )


def _say_if_list_unreadable(config: Config) -> None:
    """A send stops (or never starts) on a list it cannot read; status says so before one."""
    from newsflash.errors import SubscribersError
    from newsflash.subscribers import load_subscribers

    try:
        load_subscribers(config.subscribers_path)
    except SubscribersError as e:
        console.print(
            f"[red]the partner list cannot be read now[/]: {escape(str(e))}. A send stops "
            "(or does not start) until it is fixed; see `newsflash subscribers`.",
            soft_wrap=True,
        )


@main.command()
@pass_state
@handled
def subscribers(state: State) -> None:
    """Summarise subscribers.csv: statuses, segments, the audience, and every problem row.

    Exit 1 if any row has an error (such rows are skipped when sending).
    """
    from newsflash.subscribers import load_subscribers, summary_table

    config = state.config
    sl = load_subscribers(config.subscribers_path)
    console.print(summary_table(sl, config.model.audience.segments, max_problems=200))
    errors = sum(1 for p in sl.problems if p.severity == "error")
    if errors:
        console.print(
            f"[red]{errors} row(s) have errors and are skipped when sending; fix them "
            f"in {config.subscribers_path}.[/]",
            soft_wrap=True,
        )
        sys.exit(1)


# approve, schedule list|run (newsflash/cli_schedule.py registers them on `main`)
import newsflash.cli.schedule  # noqa: E402

# serve, suppressions list|lift|add (newsflash/cli/serve.py registers them on `main`)
import newsflash.cli.serve  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    main()
