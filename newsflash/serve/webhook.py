"""SendGrid's Event Webhook: verify the signature, refuse replays, store each event once and
let bounces, complaints and unsubscribes heal the list.

Order matters and is kept strictly: size limit while reading, then timestamp and ECDSA
signature over ``timestamp + raw body`` (the sendgrid library's own `EventWebhook` helper),
and only then is the body parsed. A refusal is logged and never stored. A valid batch is
answered 2xx as soon as it is on disk: SendGrid retries anything else for 24 hours.
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from newsflash.errors import NewsflashError
from newsflash.serve.body import BadLength, BodyTooLarge, read_limited
from newsflash.state.events import Event, EventStore, parse_event
from newsflash.state.suppressions import NewSuppression, SuppressionError, SuppressionStore

__all__ = [
    "KEY_VAR",
    "BatchResult",
    "Listener",
    "MalformedBatch",
    "Verifier",
    "WebhookEndpoint",
    "WebhookKeyError",
    "effect_of",
    "parse_batch",
]

log = logging.getLogger("newsflash.serve.webhook")

KEY_VAR = "SENDGRID_WEBHOOK_PUBLIC_KEY"
SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
_KEY_HELP = (
    "copy the verification key from SendGrid (Settings > Mail Settings > Event Webhook > "
    "Signature Verification) into the environment as it is shown, base64 without PEM lines"
)

# `dropped` events name why; these four mean the address itself must not be mailed again.
# Others ("Invalid SMTPAPI header", "Spam Content ...") are about the message, not the person.
_DROPPED_REASONS = {
    "bounced address": "bounce",
    "invalid": "invalid",
    "unsubscribed address": "unsubscribe",
    "spam reporting address": "spamreport",
}
_SUPPRESSING = {
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "group_unsubscribe",
}


class WebhookKeyError(NewsflashError):
    """SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA P-256 public key in base64."""


class MalformedBatch(ValueError):
    """A correctly signed body that is not a JSON array of events (400, logged)."""


def _load_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid shows the key as base64 DER; a pasted PEM block is accepted too."""
    lines = [ln.strip() for ln in text.strip().splitlines() if "-----" not in ln]
    b64 = "".join(lines)
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(b64)
    except (ValueError, TypeError) as e:
        raise WebhookKeyError(f"{KEY_VAR} is not a public key ({e}); {_KEY_HELP}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookKeyError(f"{KEY_VAR} is not an ECDSA P-256 key; {_KEY_HELP}")
    return key


class Verifier:
    """Says why a request must be refused, or None; never parses the body."""

    def __init__(self, public_key: str, max_age: int, clock: Callable[[], datetime]) -> None:
        self._helper = EventWebhook()
        self._key = _load_key(public_key)
        self._max_age = max_age
        self._clock = clock

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], max_age: int, clock: Callable[[], datetime]
    ) -> Verifier | None:
        """None when the variable is unset: serve runs for unsubscribes alone."""
        text = environ.get(KEY_VAR, "").strip()
        return cls(text, max_age, clock) if text else None

    def refusal(self, body: bytes, signature: str | None, timestamp: str | None) -> str | None:
        if not signature or not timestamp:
            return "no signature or timestamp header (is signature verification on in SendGrid?)"
        if not timestamp.isascii() or not timestamp.isdigit():
            return f"timestamp header is not a unix time: {timestamp[:40]!r}"
        age = self._clock().timestamp() - int(timestamp)
        if abs(age) > self._max_age:
            return (
                f"timestamp {age:+.0f} s from now, outside the {self._max_age} s window (replay?)"
            )
        try:
            payload = body.decode("utf-8")
            valid = self._helper.verify_signature(payload, signature, timestamp, self._key)
        except (UnicodeDecodeError, binascii.Error, ValueError, TypeError):
            valid = False
        return None if valid else "signature does not verify"


def parse_batch(body: bytes) -> list[Event]:
    """A JSON array of event objects; an item that is not an object is logged and dropped."""
    try:
        data = json.loads(body)
    except ValueError as e:
        raise MalformedBatch(f"body is not JSON: {e}") from None
    if not isinstance(data, list):
        raise MalformedBatch(f"body is a JSON {type(data).__name__}, not an array of events")
    events = []
    for n, item in enumerate(data):
        if isinstance(item, dict):
            events.append(parse_event(item))
        else:
            log.warning("webhook: item %d of the batch is not an event object; skipped", n)
    return events


def effect_of(e: Event) -> tuple[str, str] | None:
    """("suppress", reason) or ("lift", reason) for an event, None if it only counts.

    A bounce suppresses unless SendGrid calls it `blocked` (a refusal that may pass, counted
    like `deferred`); an untyped bounce is taken as a hard one.
    """
    if e.event == "bounce":
        return ("suppress", "bounce") if e.get("type") in ("bounce", "") else None
    if e.event == "dropped":
        reason = _DROPPED_REASONS.get(e.get("reason").strip().lower())
        return ("suppress", reason) if reason else None
    if e.event == "group_resubscribe":
        return ("lift", "group_unsubscribe")
    reason = _SUPPRESSING.get(e.event)
    return ("suppress", reason) if reason else None


@dataclass(frozen=True)
class BatchResult:
    received: int
    duplicates: int
    suppressed: int
    lifted: int


class Listener:
    """Stores a verified batch once per event and applies what it says to the suppressions."""

    def __init__(
        self, events: EventStore, suppressions: SuppressionStore, clock: Callable[[], datetime]
    ) -> None:
        self._events = events
        self._suppressions = suppressions
        self._clock = clock

    def receive(self, batch: Sequence[Event]) -> BatchResult:
        fresh = self._events.fresh(batch)
        suppressed = lifted = 0
        pending: list[NewSuppression] = []
        for e in sorted(fresh, key=lambda e: e.happened_at or 0):
            action = effect_of(e)
            if action is None:
                continue
            if not e.email or "@" not in e.email:
                log.warning(
                    "webhook: %s event %s has no usable email; not applied", e.event, e.sg_event_id
                )
                continue
            kind, reason = action
            if kind == "lift":  # keep the order: an unsubscribe before it is lifted by it
                suppressed += self._add(pending)
                pending = []
                lifted += self._suppressions.lift(e.email, by="webhook", reasons=[reason])
            else:
                pending.append(
                    NewSuppression(e.email, reason, "webhook", self._detail(e), self._when(e))
                )
        suppressed += self._add(pending)
        new = self._events.record(fresh)
        return BatchResult(len(batch), len(batch) - new, suppressed, lifted)

    def _add(self, pending: list[NewSuppression]) -> int:
        try:
            return len(self._suppressions.add_many(pending))
        except SuppressionError:  # one odd address must not cost the rest of the batch
            return sum(self._add_one(p) for p in pending)

    def _add_one(self, p: NewSuppression) -> int:
        try:
            return (
                1
                if self._suppressions.add(p.address, p.reason, p.source, detail=p.detail, at=p.at)
                else 0
            )
        except SuppressionError as err:
            log.warning("webhook: %s; not applied", err)
            return 0

    def _when(self, e: Event) -> datetime:
        """When it happened by SendGrid's clock, unless that is implausible."""
        now = self._clock()
        if e.happened_at is not None and 946_684_800 <= e.happened_at <= now.timestamp() + 86_400:
            return datetime.fromtimestamp(e.happened_at, UTC)
        return now

    @staticmethod
    def _detail(e: Event) -> str:
        parts = [f"sg_event_id={e.sg_event_id}", f"event={e.event}"]
        for key in ("reason", "type", "asm_group_id"):
            if e.get(key):
                parts.append(f"{key}={e.get(key)[:200]}")
        if e.edition_id:
            parts.append(f"edition={e.edition_id}")
        return "; ".join(parts)


@dataclass
class WebhookEndpoint:
    """``POST /webhooks/sendgrid``: 413 / 403 / 400 are refusals, logged and never stored."""

    verifier: Verifier | None
    listener: Listener
    body_limit: int

    async def handle(self, request: Request) -> Response:
        if self.verifier is None:
            log.error("webhook refused: %s is not set, so no event can be verified", KEY_VAR)
            return PlainTextResponse("Webhook not configured.\n", 503)
        try:
            body = await read_limited(request, self.body_limit)
        except BodyTooLarge as e:
            log.warning("webhook refused: body of %s bytes or more, over the limit", e.args[0])
            return PlainTextResponse("Request body too large.\n", 413)
        except BadLength:
            return PlainTextResponse("Bad Content-Length.\n", 400)
        why = self.verifier.refusal(
            body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
        )
        if why is not None:
            log.warning("webhook refused from %s: %s", _client(request), why)
            return PlainTextResponse("Forbidden.\n", 403)
        try:
            batch = parse_batch(body)
        except MalformedBatch as e:
            log.warning("webhook refused: a signed batch that cannot be read: %s", e)
            return PlainTextResponse("Bad Request: expected a JSON array of events.\n", 400)
        result = await run_in_threadpool(self.listener.receive, batch)
        return JSONResponse(
            {
                "received": result.received,
                "duplicates": result.duplicates,
                "suppressed": result.suppressed,
                "lifted": result.lifted,
            }
        )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"
