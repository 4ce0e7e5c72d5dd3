"""`newsflash preview` and `archive`: the edition seen in a browser.

Both rooms are imported inside their command on purpose: they load the renderer (premailer,
lxml, cssutils) and watchdog, start-up time that every other command would pay for too.
"""

from __future__ import annotations

import click

from newsflash.cli.common import State, console, edition_argument, handled, pass_state


@click.command()
@edition_argument
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
def preview(state: State, edition: str, port: int, host: str) -> None:
    """Serve a live preview of EDITION (default: the coming one) on http://127.0.0.1:PORT/.

    Shows the email at 600 px and 375 px, the plain text, subject, preheader, checks, items
    left out and item-file problems; rebuilds and reloads the page when an item file, a
    template or config.toml changes. Writes nothing; Ctrl-C stops it.
    """
    from newsflash.web.preview import serve  # deferred: the renderer's start-up time

    serve(
        state.config_path,
        edition,
        port,
        echo=lambda line: console().print(line, soft_wrap=True, markup=False),
        host=host,
    )


@click.command()
@pass_state
@handled
def archive(state: State) -> None:
    """Write the web archive of sent editions to site/ (index, one page each, Atom feed).

    Each page is the edition's web version (no unsubscribe link, no greeting), built with the
    items its send recorded. Publish site/ at config.toml's web_base_url on any web server.
    """
    from newsflash.web.archive import write_site  # deferred: the renderer's start-up time

    result = write_site(state.config)
    for note in result.notes:
        console().print(f"[yellow]note[/] {note}", soft_wrap=True, markup=True)
    for page in result.pages:
        e = page.edition
        console().print(f"  {e.id}  No. {e.number}  {e.title}", soft_wrap=True, markup=False)
    console().print(
        f"[green]wrote[/] {result.out}/ ({len(result.pages)} sent edition(s) from "
        f"{result.ledger.name}; feed.xml, index.html)",
        soft_wrap=True,
    )
