"""After the send: `newsflash serve` and `newsflash suppressions list|lift|add`.

Registered on the main group by importing this module (cli.py does, at its end); the work is
in serve/ and state/suppressions.py.
"""

from __future__ import annotations

import sys

import click

from newsflash.cli.common import State, console, escape, handled, pass_state, table


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=8025, show_default=True, type=click.IntRange(1, 65535), help="Port."
)
@pass_state
@handled
def serve(state: State, host: str, port: int) -> None:
    """Serve one-click unsubscribes and SendGrid's Event Webhook until SIGTERM or Ctrl-C.

    \b
    Meant to sit behind the alliance's reverse proxy at config.toml [serve] public_url:
      GET  /healthz                 ok
      GET  /unsubscribe/TOKEN       a page with one button; POST: one-click (RFC 8058)
      POST /webhooks/sendgrid       signed events: bounces, complaints, unsubscribes
    Needs NEWSFLASH_SECRET (signs the links) and, for the webhook,
    SENDGRID_WEBHOOK_PUBLIC_KEY, both from the environment. Writes state/suppressions.sqlite
    and state/events.sqlite.
    """
    import logging  # deferred: only the long-running commands log; --help loads none

    import uvicorn

    from newsflash.serve.app import create_app  # deferred: Starlette and uvicorn, start-up time

    logging.basicConfig(
        level=logging.DEBUG if state.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    app = create_app(state.config)
    console().print(f"serving on http://{host}:{port}/ (Ctrl-C stops)", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_config=None, server_header=False)


@click.group()
def suppressions() -> None:
    """Addresses never mailed again: unsubscribes, bounces, complaints (state/).

    \b
      newsflash suppressions list            who is suppressed, why, since when, by what
      newsflash suppressions lift ADDRESS    mail ADDRESS again (the history is kept)
      newsflash suppressions add ADDRESS     suppress ADDRESS by hand (a partner asked)
      newsflash suppressions sync            in step with SendGrid's lists (SENDGRID_API_KEY)
    """


@suppressions.command("list")
@click.option("--all", "include_lifted", is_flag=True, help="Include lifted suppressions.")
@click.option("--address", default=None, help="Only this address (with --all: its history).")
@pass_state
@handled
def suppressions_list(state: State, include_lifted: bool, address: str | None) -> None:
    """Show the suppressed addresses, oldest first."""
    from newsflash.state.suppressions import SuppressionStore  # deferred: start-up time

    store = SuppressionStore.in_state(state.config.state_dir)
    try:
        rows = store.rows(include_lifted=include_lifted, address=address)
    finally:
        store.close()
    rows_table = table(f"Suppressions ({store.path})")
    for column in ("address", "reason", "source", "since", "detail"):
        rows_table.add_column(column)
    if include_lifted:
        rows_table.add_column("lifted")
    for r in rows:
        cells = [r.address, r.reason, r.source, r.created_at, r.detail]
        if include_lifted:
            cells.append(f"{r.lifted_at} by {r.lifted_by}" if r.lifted_at else "")
        rows_table.add_row(*(escape(c) for c in cells))
    console().print(rows_table)
    active = sum(1 for r in rows if r.active)
    console().print(f"{active} active suppression(s)", soft_wrap=True)


@suppressions.command("lift")
@click.argument("address")
@click.option("--reason", "reasons", multiple=True, help="Lift only this reason (repeatable).")
@pass_state
@handled
def suppressions_lift(state: State, address: str, reasons: tuple[str, ...]) -> None:
    """Lift ADDRESS's suppressions so the next send mails it again (if the CSV says so)."""
    from newsflash.state.suppressions import (  # deferred: start-up
        REASONS,
        SuppressionError,
        SuppressionStore,
    )

    unknown = [r for r in reasons if r not in REASONS]
    if unknown:
        raise SuppressionError(f"unknown reason {unknown[0]!r}; use one of {', '.join(REASONS)}")
    store = SuppressionStore.in_state(state.config.state_dir)
    try:
        lifted = store.lift(address, by="by hand", reasons=reasons or None)
    finally:
        store.close()
    if not lifted:
        raise SuppressionError(
            f"{address} has no active suppression"
            + (f" for {', '.join(reasons)}" if reasons else "")
            + "; see `newsflash suppressions list`"
        )
    console().print(
        f"[green]lifted[/] {lifted} suppression(s) of {escape(address)}", soft_wrap=True
    )
    console().print(
        "SendGrid may still list it and would then drop the mail: the next "
        "`newsflash suppressions sync` (and a send with a key) removes it there too.",
        soft_wrap=True,
    )


@suppressions.command("add")
@click.argument("address")
@click.option("--reason", default="unsubscribe", show_default=True, help="Why.")
@click.option("--note", default="", help="Recorded with it (who asked, when).")
@pass_state
@handled
def suppressions_add(state: State, address: str, reason: str, note: str) -> None:
    """Suppress ADDRESS by hand: no send mails it again until it is lifted."""
    from newsflash.state.suppressions import SuppressionStore  # deferred: start-up time

    store = SuppressionStore.in_state(state.config.state_dir)
    try:
        added = store.add(address, reason, "by hand", detail=note)
    finally:
        store.close()
    word = "suppressed" if added else "already suppressed"
    console().print(f"[green]{word}[/] {escape(address)} ({reason})", soft_wrap=True)


@suppressions.command("sync")
@pass_state
@handled
def suppressions_sync(state: State) -> None:
    """Bring state/ and SendGrid's suppression lists into step, both ways.

    \b
    Reads SendGrid's bounces, blocks, spam reports, invalid emails, global unsubscribes and
    the [sendgrid] asm_group_id group; records what is new here; removes from SendGrid what
    was lifted here; pushes newsflash's own unsubscribes. Needs SENDGRID_API_KEY (a key with
    the Suppressions permission). Run twice, the second run changes nothing.
    """
    from newsflash.sending.suppression_sync import (  # deferred: start-up
        key_and_host,
        sync_suppressions,
    )
    from newsflash.state.suppressions import SuppressionStore  # deferred: start-up time

    key, host = key_and_host(state.config)
    store = SuppressionStore.in_state(state.config.state_dir)
    try:
        report = sync_suppressions(state.config, store, key, host=host)
    finally:
        store.close()
    for line in report.lines():
        console().print(escape(line), soft_wrap=True)
    if report.errors:
        sys.exit(1)
