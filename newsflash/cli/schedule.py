"""The calendar's commands: `newsflash approve`, `newsflash schedule list|run`.

Registered on the main group by importing this module (cli/__init__.py does); the commands
are thin: the work is in sending/approval.py and schedule/ (timetable, scheduler, jobs, intake).
The imports of that work are deferred into the commands on purpose: APScheduler, SQLAlchemy
and the renderer take a second to load, which `newsflash --help` or `check` should not pay.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import click

from newsflash.cli.common import (
    State,
    console,
    edition_argument,
    escape,
    handled,
    pass_state,
    table,
)


def _default_reviewer() -> str:
    try:
        import getpass  # deferred: start-up time (only `approve` asks who runs it)

        return os.environ.get("NEWSFLASH_REVIEWER") or getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return ""


@click.command()
@edition_argument
@click.option(
    "--by",
    "by",
    default=_default_reviewer,
    show_default="your user name",
    help="Who approves (recorded with the approval; $NEWSFLASH_REVIEWER sets it).",
)
@pass_state
@handled
def approve(state: State, edition: str, by: str) -> None:
    """Approve EDITION as it builds now: the scheduled send sends exactly this.

    Records the edition's manifest hash (items, templates, config) in the ledger and the full
    manifest in state/approvals/. If anything changes afterwards, the scheduled send holds the
    edition and tells the reviewers what changed; approve again to accept the change.
    """
    from newsflash.sending.approval import approve as approve_edition  # deferred: start-up
    from newsflash.state.ledgers import build_edition  # deferred: the renderer's start-up time

    config = state.config
    build = build_edition(config, edition)  # the publication ledger, as the send builds it
    approval = approve_edition(config, edition, by, build=build)
    e = build.edition
    for s in e.sections:
        for i in s.items:
            console().print(
                f"  {escape(s.title)}: {escape(i.title)}  [dim]{escape(i.key)}[/]", soft_wrap=True
            )
    for lo in e.left_out:
        console().print(
            f"  [yellow]left out[/] {escape(lo.key)}: {escape(lo.reason)}", soft_wrap=True
        )
    console().print(
        f"[green]approved[/] edition {edition} (No. {e.number}, {len(e.items)} items, "
        f"manifest {approval.manifest_hash[:12]}) by {escape(approval.approved_by)}",
        soft_wrap=True,
    )
    if not config.model.schedule.require_approval:
        console().print(
            "[yellow]note[/] config.toml [schedule] require_approval is false: the "
            "scheduled send does not wait for approval.",
            soft_wrap=True,
        )


@click.group()
def schedule() -> None:
    """The monthly calendar: call for items, proof, send (config.toml [schedule]).

    \b
      newsflash schedule list   each job and its next runs (newsletter's zone and UTC)
      newsflash schedule run    run the scheduler in the foreground (as a service)
    """


def _local(moment: dt.datetime, tz: dt.tzinfo) -> str:
    return f"{moment.astimezone(tz):%a %Y-%m-%d %H:%M %Z}"


def _utc(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%MZ}"


@schedule.command("list")
@click.option(
    "--count",
    "-n",
    default=3,
    show_default=True,
    type=click.IntRange(1, 50),
    help="How many runs to show per job.",
)
@pass_state
@handled
def schedule_list(state: State, count: int) -> None:
    """Show each job, its cron fields and its next runs in the newsletter's zone and UTC."""
    from newsflash.schedule import timetable  # deferred: APScheduler and the renderer, start-up
    from newsflash.schedule.scheduler import stored_jobs  # deferred: SQLAlchemy, start-up

    config = state.config
    tz = timetable.zone(config)
    now = dt.datetime.now(tz)
    sched = config.model.schedule
    stored = stored_jobs(config)
    jobs = table(
        f"Schedule ({tz}; grace {sched.grace_hours:g} h, approval "
        f"{'required' if sched.require_approval else 'not required'})"
    )
    jobs.add_column("job")
    jobs.add_column("next runs", no_wrap=True)
    jobs.add_column("UTC", no_wrap=True)
    jobs.add_column("edition", no_wrap=True)
    crons: list[str] = []
    for name in timetable.JOBS:
        job = getattr(sched, name)
        if job is None or not job.enabled:
            jobs.add_row(name, "[dim]not configured[/]" if job is None else "[dim]disabled[/]")
            continue
        crons.append(f"  {name}: {escape(timetable.cron_text(job))}")
        rows = _missed_row(stored.get(name), now, tz)
        rows += [
            (_local(when, tz), _utc(when), edition)
            for when, edition in timetable.upcoming_runs(config, name, count, now)
        ]
        for i, row in enumerate(rows):
            jobs.add_row(name if i == 0 else "", *row)
    console().print(jobs)
    console().print(
        "cron fields (config.toml \\[schedule.JOB]):\n" + "\n".join(crons), soft_wrap=True
    )
    console().print(
        f"reviewers: {', '.join(sched.reviewers) or '[red]none[/]'}; contributors: "
        f"{len(sched.contributors)}; deadline {sched.deadline_days} day(s) before the "
        "send",
        soft_wrap=True,
    )


def _missed_row(
    pending: dt.datetime | None, now: dt.datetime, tz: dt.tzinfo
) -> list[tuple[str, str, str]]:
    """A run that fell due while the scheduler was down and waits in the store, if any."""
    if pending is None or pending > now:
        return []
    missed = f"[yellow]{_local(pending, tz)} missed[/]"
    return [(missed, _utc(pending), "[yellow]runs at start if within grace[/]")]


@schedule.command("run")
@pass_state
@handled
def schedule_run(state: State) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C.

    \b
    Runs the jobs of config.toml [schedule] in the newsletter's time zone, with the job store
    in state/scheduler.sqlite (a run missed while it was down fires at start if within
    grace_hours, and is reported to the reviewers, not made, after that). Watches
    submissions/ and tells each contributor at once what is wrong with a new file
    (state/intake.log keeps every check). Logs each job's start, outcome and next run.
    SIGTERM/SIGINT stop it cleanly; a send in progress stops after its batch and resumes at
    the next start. Only one scheduler may run per workspace (state/scheduler.lock).
    """
    import logging  # deferred: only the long-running commands log; --help loads none

    from newsflash.schedule.scheduler import run  # deferred: APScheduler's start-up time

    logging.basicConfig(
        level=logging.DEBUG if state.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    run(state.config)
