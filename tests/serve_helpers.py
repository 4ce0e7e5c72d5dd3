"""Real uvicorn on 127.0.0.1 in a thread, a settable clock, and events signed as SendGrid signs
them (ECDSA P-256 over timestamp + raw body, base64 DER signature) with a key made per test."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
START = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The app's only source of time in tests; `advance` moves it."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class SendGridKeys:
    """A key pair like the one SendGrid keeps; `public_b64` is what its settings page shows."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_b64(self) -> str:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str) -> str:
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        ts = str(timestamp)
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": self.sign(body, ts),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        }


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    host: str
    port: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def form(self, path: str, fields: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request(
            "POST",
            path,
            fields.encode(),
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )


@contextmanager
def running(app: Any) -> Iterator[Server]:
    """uvicorn serving `app` on a free port of 127.0.0.1 until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(10)


def event(
    n: int, kind: str = "delivered", email: str = "anna.keller@example.org", **extra: Any
) -> dict[str, Any]:
    """A SendGrid event as the send's custom_args make it come back (top-level keys)."""
    return {
        "email": email,
        "timestamp": int(START.timestamp()) - 60,
        "event": kind,
        "sg_event_id": f"ev-{n:06d}",
        "sg_message_id": f"msg{n}.filter0001",
        "edition": "2026-03",
        "recipient_id": "0123456789abcdef",
        **extra,
    }
