"""The Starlette app behind `newsflash serve`: built from the Config, the environment's
secrets and a clock, so tests run it on real uvicorn with their own keys and time.

Routes: ``/healthz``, ``/unsubscribe/{token}`` (GET page, POST one-click),
``/unsubscribe/{token}/undo`` (POST), ``/webhooks/sendgrid`` (POST).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsflash.config import Config
from newsflash.serve.unsubscribe import Directory, Unsubscribe
from newsflash.serve.webhook import Listener, Verifier, WebhookEndpoint
from newsflash.state.events import EventStore
from newsflash.state.suppressions import SuppressionStore
from newsflash.tokens import Signer

__all__ = ["create_app"]

Clock = Callable[[], datetime]

# Pages carry a token in their URL and an undo ticket in their body: never cached, framed,
# or leaked to another site through Referer; no script, no outside asset.
SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer (pure ASGI: no per-request task overhead)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


def create_app(
    config: Config, *, environ: Mapping[str, str] | None = None, clock: Clock | None = None
) -> Starlette:
    """Raises SecretError or WebhookKeyError at once if a secret is missing or malformed."""
    env = os.environ if environ is None else environ
    now: Clock = clock or (lambda: datetime.now(UTC))
    settings = config.model.serve
    signer = Signer.from_env(env)
    verifier = Verifier.from_env(env, settings.webhook_max_age_seconds, now)
    suppressions = SuppressionStore.in_state(config.state_dir, now)
    events = EventStore.in_state(config.state_dir, now)
    newsletter = config.model.newsletter
    unsubscribe = Unsubscribe(
        signer=signer,
        directory=Directory(config.subscribers_path, suppressions),
        suppressions=suppressions,
        pages=Environment(
            loader=PackageLoader("newsflash.serve", "pages"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        ),
        page_context={
            "newsletter": newsletter.name,
            "organisation": newsletter.organisation,
            "language": newsletter.language,
            "accent": newsletter.accent_color,
        },
        public_url=settings.public_url,
        clock=now,
    )
    webhook = WebhookEndpoint(
        verifier, Listener(events, suppressions, now), settings.webhook_max_body_kb * 1024
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        suppressions.close()
        events.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/unsubscribe/{token}", unsubscribe.page, methods=["GET"]),
            Route("/unsubscribe/{token}", unsubscribe.post, methods=["POST"]),
            Route("/unsubscribe/{token}/undo", unsubscribe.undo, methods=["POST"]),
            Route("/webhooks/sendgrid", webhook.handle, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeaders)
    return app
