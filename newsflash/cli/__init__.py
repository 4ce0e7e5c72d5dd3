"""The command line: parses, calls the library, prints. No logic lives here.

Every expected failure is a NewsflashError, printed as one clear line with exit code 1 (usage
errors exit 2); a traceback appears only with --debug.

A command's module is imported only when that command runs or shows its help, so a command
pays for its own imports alone (issue 12's cold start). `newsflash --help` imports none of
them: the one-line summaries are written in COMMANDS (tests/test_cli.py fails if one drifts
from its command's docstring), and the group's body, which needs cli/common.py, does not run
for --help.
"""

from __future__ import annotations

import importlib
from gettext import gettext as _
from pathlib import Path
from typing import NamedTuple

import click


class Entry(NamedTuple):
    """Where a command is defined (newsflash.cli.<module>:<attribute>), and its summary in
    `newsflash --help`: its docstring's first sentence, as click would shorten it."""

    where: str
    summary: str


# Every command by name. A summary is the command's `get_short_help_str` at any width; kept
# here so that the top-level help imports no command module (tests/test_cli.py compares them).
COMMANDS: dict[str, Entry] = {
    "init": Entry(
        "start:init",
        "Make a new newsletter workspace in FOLDER: a commented config.toml, submissions/ "
        "with one example item and a subscribers.csv header.",
    ),
    "edition": Entry(
        "start:edition", 'Start and set up an edition (config.toml [editions."YYYY-MM"]).'
    ),
    "check": Entry(
        "build:check",
        "Validate config.toml, its calendar, every item file and subscribers.csv; report "
        "every problem at once.",
    ),
    "build": Entry(
        "build:build",
        "Render EDITION (YYYY-MM; default: the coming one by the schedule) into build/EDITION/.",
    ),
    "new": Entry(
        "build:new", "Scaffold an item file for SECTION in submissions/ and print its path."
    ),
    "preview": Entry(
        "web:preview",
        "Serve a live preview of EDITION (default: the coming one) on http://127.0.0.1:PORT/.",
    ),
    "approve": Entry(
        "schedule:approve",
        "Approve EDITION as it builds now: the scheduled send sends exactly this.",
    ),
    "send": Entry(
        "send:send",
        "Send EDITION (YYYY-MM) to every subscribed partner in the audience, exactly once.",
    ),
    "status": Entry(
        "status:status",
        "Where every recipient of EDITION stands: counts, approval, uncertain and failed.",
    ),
    "schedule": Entry(
        "schedule:schedule",
        "The monthly calendar: call for items, proof, send (config.toml [schedule]).",
    ),
    "archive": Entry(
        "web:archive",
        "Write the web archive of sent editions to site/ (index, one page each, Atom feed).",
    ),
    "subscribers": Entry(
        "subscribers:subscribers",
        "Summarise subscribers.csv: statuses, segments, the audience, and every problem row.",
    ),
    "serve": Entry(
        "serve:serve",
        "Serve one-click unsubscribes and SendGrid's Event Webhook until SIGTERM or Ctrl-C.",
    ),
    "suppressions": Entry(
        "serve:suppressions",
        "Addresses never mailed again: unsubscribes, bounces, complaints (state/).",
    ),
    "report": Entry(
        "report:report",
        "Report what EDITION did (default: the last one sent): delivery, trust, engagement.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name when they are first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, name = entry.where.split(":")
        found = importlib.import_module(f"newsflash.cli.{module}")  # deferred: start-up time
        command: click.Command = getattr(found, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, from the summaries in COMMANDS instead of the commands: a
        stand-in command per name shortens its summary as click shortens a docstring."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=COMMANDS[name].summary).get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section(_("Commands")):  # click's gettext, as click words it
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click suggests a near name from `self.commands`, which a lazy group leaves empty:
        the suggestion is made here from the names instead, without importing a command."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            import difflib  # deferred: only for a mistyped command, kept out of start-up

            close = difflib.get_close_matches(str(args[0]), COMMANDS) if args else []
            if not close or str(args[0]) in COMMANDS:
                raise
            raise click.UsageError(f"{e.message} Did you mean {close[0]!r}?", ctx) from None


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
      newsflash init DIR           a new newsletter workspace in DIR (config, submissions ...)
      newsflash edition new 2022-03  start a month: its title, preheader, editorial
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
      newsflash report             what the last edition did (--all, --csv DIR, --html FILE)

    \b
    EDITION defaults to the coming edition by the schedule, named in the output.
    Every command takes --help. Errors are one line and exit 1 (2 for usage errors).
    """
    from newsflash.cli.common import State  # deferred: --help never runs this body

    ctx.obj = State(config_path, debug)


if __name__ == "__main__":  # pragma: no cover
    main()
