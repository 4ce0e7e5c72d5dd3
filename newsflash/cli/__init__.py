"""The command line: parses, calls the library, prints. No logic lives here.

Every expected failure is a NewsflashError, printed as one clear line with exit code 1 (usage
errors exit 2); a traceback appears only with --debug.

A command's module is imported only when that command runs or shows its help, so a command
pays for its own imports alone (issue 12's cold start); `newsflash --help` imports every
command module for the one-line summaries, and none of them imports a heavy library at its top.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from newsflash.cli.common import State

# Every command by name, and where it is defined: newsflash.cli.<module>:<attribute>.
COMMANDS: dict[str, str] = {
    "init": "start:init",
    "edition": "start:edition",
    "check": "build:check",
    "build": "build:build",
    "new": "build:new",
    "preview": "web:preview",
    "approve": "schedule:approve",
    "send": "send:send",
    "status": "status:status",
    "schedule": "schedule:schedule",
    "archive": "web:archive",
    "subscribers": "subscribers:subscribers",
    "serve": "serve:serve",
    "suppressions": "serve:suppressions",
    "report": "report:report",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name when they are first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, name = where.split(":")
        found = importlib.import_module(f"newsflash.cli.{module}")  # deferred: start-up time
        command: click.Command = getattr(found, name)
        return command

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
    ctx.obj = State(config_path, debug)


if __name__ == "__main__":  # pragma: no cover
    main()
