"""One-click unsubscribe (RFC 8058), its confirmation page for people, and its undo.

* ``POST /unsubscribe/{token}`` with ``List-Unsubscribe=One-Click`` (what Gmail, Apple Mail and
  Outlook send): the address is suppressed before the answer leaves, 200, nothing to click.
* ``GET`` (a person, or a link scanner that must not unsubscribe anyone): a page whose one
  button makes that POST; its answer offers an undo.
* ``POST /unsubscribe/{token}/undo``: lifts exactly the suppression that POST created, within a
  short window, from our own page only. The undo carries its own MAC over the suppression's id
  and the time it was issued, which only the unsubscribing browser ever saw: a forwarded email
  or a third-party page cannot resubscribe someone who left.

Every bad token (forged, malformed, or a genuine-looking one for nobody) gets the same plain 400.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from newsflash.errors import NewsflashError
from newsflash.serve.body import BadLength, BodyTooLarge, read_limited
from newsflash.state.suppressions import Suppression, SuppressionStore
from newsflash.subscribers import load_subscribers
from newsflash.tokens import Signer

__all__ = ["Directory", "Unsubscribe"]

log = logging.getLogger("newsflash.serve.unsubscribe")

FORM_LIMIT = 4096
UNDO_SECONDS = 30 * 60
_UNDO = b"newsflash/undo/v1\x00"
_INVALID = "This unsubscribe link is not valid.\n"
_MULTIPART_ONE_CLICK = re.compile(
    rb'name="?List-Unsubscribe"?\r\n(?:[^\r\n]+\r\n)*\r\nOne-Click\r\n', re.IGNORECASE
)


class DirectoryUnavailable(NewsflashError):
    """The partner list cannot be read just now, so a genuine token cannot be resolved."""


class Directory:
    """Who a recipient id stands for: subscribers.csv (re-read when it changes), then any
    address the suppression store has held (a partner since removed from the list can still
    undo, or click twice)."""

    def __init__(self, csv_path: Path, suppressions: SuppressionStore) -> None:
        self._path = csv_path
        self._suppressions = suppressions
        self._stamp: tuple[int, int] | None = None
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        with self._lock:
            self._reload_if_changed()

    def _reload_if_changed(self) -> None:
        try:
            st = self._path.stat()
        except OSError as e:
            raise DirectoryUnavailable(f"{self._path}: {e}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            people = load_subscribers(self._path).recipients
            self._ids = {r.recipient_id: r.email.lower() for r in people}
            self._stamp = stamp

    def address_of(self, rid: str) -> str | None:
        try:
            self._refresh()
        except NewsflashError as e:
            known = self._suppressions.address_of(rid)
            if known is None:
                raise DirectoryUnavailable(str(e)) from None
            return known
        return self._ids.get(rid) or self._suppressions.address_of(rid)


def mask(address: str) -> str:
    """Enough for a partner to recognise the address, not enough to harvest it from a link."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


@dataclass(frozen=True)
class UndoTicket:
    sid: int
    issued: int
    mac: str


@dataclass
class Unsubscribe:
    signer: Signer
    directory: Directory
    suppressions: SuppressionStore
    pages: Environment
    page_context: dict[str, str]
    public_url: str
    clock: Callable[[], datetime]

    # -- the three endpoints ---------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        found = await self._resolve(request)
        if isinstance(found, Response):
            return found
        _, address = found
        return self._html("confirm.html.j2", masked=mask(address))

    async def post(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        if not _is_one_click(request.headers.get("content-type", ""), form):
            return PlainTextResponse(
                "A one-click unsubscribe posts List-Unsubscribe=One-Click; to unsubscribe by "
                "hand, open the link in a browser.\n",
                400,
            )
        found = await self._resolve(request)
        if isinstance(found, Response):
            return found
        rid, address = found
        added = await run_in_threadpool(
            self.suppressions.add,
            address,
            "unsubscribe",
            "one-click",
            detail=_edition_detail(request),
        )
        log.info("unsubscribed recipient %s (one-click)", rid)
        if _fields(form).get("page") != ["1"]:
            return PlainTextResponse("Unsubscribed.\n", 200)
        undo = self._ticket(rid, added) if added else None
        return self._html(
            "done.html.j2",
            masked=mask(address),
            undo=undo,
            token=request.path_params["token"],
            undo_minutes=str(UNDO_SECONDS // 60),
        )

    async def undo(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        if not self._same_site(request):
            log.warning(
                "undo refused: cross-site request (Origin %s)", request.headers.get("origin")
            )
            return PlainTextResponse("Refused: an undo comes from the unsubscribe page.\n", 403)
        found = await self._resolve(request)
        if isinstance(found, Response):
            return found
        rid, address = found
        row = await self._undoable(rid, _fields(form))
        if row is None or not await run_in_threadpool(
            self.suppressions.lift_id, row.id, by="one-click undo"
        ):
            return PlainTextResponse(
                "This undo is no longer valid (expired, or already used). Write to the "
                "secretariat to be subscribed again.\n",
                400,
            )
        log.info("resubscribed recipient %s (undo)", rid)
        return self._html("undone.html.j2", masked=mask(address))

    # -- helpers ---------------------------------------------------------------------------

    async def _resolve(self, request: Request) -> tuple[str, str] | Response:
        """(recipient id, address) for a genuine token of a known recipient, else the 400."""
        rid = self.signer.recipient_of(request.path_params["token"])
        if rid is None:
            return PlainTextResponse(_INVALID, 400)
        try:
            address = await run_in_threadpool(self.directory.address_of, rid)
        except DirectoryUnavailable as e:
            log.error("cannot resolve a genuine token: %s", e)
            return PlainTextResponse("Please try again in a few minutes.\n", 503)
        return (rid, address) if address else PlainTextResponse(_INVALID, 400)

    async def _form(self, request: Request) -> bytes | Response:
        try:
            return await read_limited(request, FORM_LIMIT)
        except BodyTooLarge:
            return PlainTextResponse("Request body too large.\n", 413)
        except BadLength:
            return PlainTextResponse("Bad Content-Length.\n", 400)

    def _ticket(self, rid: str, row: Suppression) -> UndoTicket:
        issued = int(self.clock().timestamp())
        return UndoTicket(row.id, issued, self.signer.mac(_UNDO, f"{rid}:{row.id}:{issued}"))

    async def _undoable(self, rid: str, fields: dict[str, list[str]]) -> Suppression | None:
        """The suppression a genuine, unexpired undo ticket names, if it is still undoable."""
        sid, issued, mac = (fields.get(k, [""])[0] for k in ("s", "t", "m"))
        if not (sid.isdigit() and issued.isdigit() and mac):
            return None
        if not self.signer.valid_mac(_UNDO, f"{rid}:{sid}:{issued}", mac):
            return None
        age = self.clock().timestamp() - int(issued)
        if not -60 <= age <= UNDO_SECONDS:
            return None
        row = await run_in_threadpool(self.suppressions.get, int(sid))
        if (
            row is None
            or not row.active
            or (row.reason, row.source) != ("unsubscribe", "one-click")
        ):
            return None
        return row

    def _same_site(self, request: Request) -> bool:
        """Browsers say where a POST comes from; anything but our own origin is refused."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        # No Origin: not a browser's cross-site form (browsers send one with every POST), and
        # such a client still needs the ticket only the unsubscribing browser saw.
        return origin is None or self._ours(origin, request)

    def _ours(self, url: str, request: Request) -> bool:
        parts = urlsplit(url)
        seen = f"{parts.scheme}://{parts.netloc}".lower()
        allowed = {f"{request.url.scheme}://{request.url.netloc}".lower()}
        if self.public_url:
            pub = urlsplit(self.public_url)
            allowed.add(f"{pub.scheme}://{pub.netloc}".lower())
        return seen in allowed

    def _html(self, template: str, **values: object) -> HTMLResponse:
        page = self.pages.get_template(template).render(**self.page_context, **values)
        return HTMLResponse(page)


def _fields(form: bytes) -> dict[str, list[str]]:
    """A urlencoded form; too many fields reads as none (our forms have three)."""
    try:
        return parse_qs(form.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    except ValueError:
        return {}


def _is_one_click(content_type: str, form: bytes) -> bool:
    """RFC 8058 allows either form encoding; only the one field matters."""
    if content_type.lower().startswith("multipart/form-data"):
        return _MULTIPART_ONE_CLICK.search(form) is not None
    return "One-Click" in _fields(form).get("List-Unsubscribe", [])


def _edition_detail(request: Request) -> str:
    """The edition the link came from, for the record only (it is not signed)."""
    edition = request.query_params.get("e", "")
    return f"edition={edition}" if re.fullmatch(r"\d{4}-\d{2}", edition) else ""
