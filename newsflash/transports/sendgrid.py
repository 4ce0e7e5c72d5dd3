"""SendGrid v3 Mail Send through the official library: one request per batch of up to 1000.

The transport joins two parts: sendgrid_payload builds each request's JSON (pure), and
sendgrid_delivery posts it (through sendgrid_client, the library wired to never follow a
redirect) and says what the answer means (accepted, refused, uncertain), which is what the
ledger records. Here: the batch a send hands over, the payload built ahead of time
while the previous request waits for its answer, and the configuration from config.toml.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from newsflash.config import Config
from newsflash.errors import TransportError
from newsflash.message import Message
from newsflash.personalise import Person
from newsflash.state.ledgers import ledger_name
from newsflash.transports.base import BatchResult
from newsflash.transports.sendgrid_client import KEY_HELP, check_api_key, check_host
from newsflash.transports.sendgrid_delivery import Delivery, Policy, Retryable, Uncertain
from newsflash.transports.sendgrid_payload import JSON, MAX_PER_REQUEST, Payloads

__all__ = [
    "KEY_HELP",
    "MAX_PER_REQUEST",
    "SendGridTransport",
    "check_api_key",
    "check_host",
    "from_config",
]


class SendGridTransport:
    """Sends batches through SendGrid; sendgrid_delivery says what each answer means."""

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        from_email: str,
        from_name: str = "",
        reply_to: str = "",
        batch_size: int = MAX_PER_REQUEST,
        timeout: float = 30.0,
        retries: int = 4,
        max_rate_limit_wait: float = 120.0,
        asm_group_id: int | None = None,
        sandbox: bool = False,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sandbox = sandbox
        self._payloads = Payloads(
            from_email=from_email,
            from_name=from_name,
            reply_to=reply_to,
            asm_group_id=asm_group_id,
            sandbox=sandbox,
            max_batch=max(1, min(MAX_PER_REQUEST, batch_size)),
        )
        policy = Policy(timeout, retries, max_rate_limit_wait, backoff, backoff_max)
        self._delivery = Delivery(api_key, host, policy, sandbox=sandbox, sleep=sleep, clock=clock)
        self.host = self._delivery.host
        self._pool: ThreadPoolExecutor | None = None
        self._prepared: tuple[Message, tuple[Person, ...], Future[bytes]] | None = None
        self._prepared_lock = threading.Lock()

    def __repr__(self) -> str:  # the default repr would be harmless, but say so explicitly
        return f"SendGridTransport(host={self.host!r}, api_key=<redacted>)"

    @property
    def max_batch(self) -> int:
        return self._payloads.max_batch

    @property
    def ledger_name(self) -> str:
        return ledger_name(self.name, sandbox=self.sandbox)

    @property
    def request_outstanding(self) -> bool:
        return self._delivery.request_outstanding

    def payload(self, batch: Sequence[Person], message: Message) -> JSON:
        """The exact JSON body of one request: one personalization per recipient."""
        return self._payloads.mail(batch, message)

    def describe_request(self, batch: Sequence[Person], message: Message) -> JSON:
        """What `send` would post, for a dry run; the key is shown as <redacted>."""
        return {
            "method": "POST",
            "url": f"{self.host}/v3/mail/send",
            "headers": {"Authorization": "Bearer <redacted>", "Content-Type": "application/json"},
            "body": self.payload(batch, message),
        }

    def prepare(self, batch: Sequence[Person], message: Message) -> None:
        """Start building the payload of the batch expected next, in a background thread.

        The caller hints it just before `send`ing the current batch, so the work overlaps the
        wait for SendGrid's answer (~10% of a 100k send). `send` uses it only for exactly
        that batch and message; anything else is built afresh, so a wrong guess costs nothing
        but the wasted work.
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsflash-payload")
        people = tuple(batch)
        future = self._pool.submit(self._payloads.body, people, message)
        with self._prepared_lock:
            self._prepared = (message, people, future)

    def _body_for(self, batch: Sequence[Person], message: Message) -> bytes:
        with self._prepared_lock:  # batches may be sent from several threads at once
            prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared_message, people, future = prepared
            if prepared_message is message and people == tuple(batch):
                return future.result()
            future.cancel()
        return self._payloads.body(batch, message)

    def send(self, batch: Sequence[Person], message: Message) -> BatchResult:
        if not batch:
            return BatchResult("accepted", requests=0)
        body = self._body_for(batch, message)  # the bytes of `payload`'s JSON
        try:
            answer = self._delivery.deliver(body, batch)
        except Uncertain as e:
            return BatchResult("uncertain", reason=e.reason, requests=self._delivery.attempts)
        except Retryable as e:
            attempts = self._delivery.attempts
            return BatchResult(
                "failed",
                reason=f"{e.reason} (gave up after {attempts} attempts; not sent)",
                requests=attempts,
            )
        return BatchResult("accepted", message_id=answer.message_id, requests=answer.requests)

    def send_notice(self, to: Sequence[str], subject: str, text: str) -> None:
        if not to:
            return
        try:
            self._delivery.deliver(self._payloads.notice(to, subject, text))
        except Uncertain as e:
            raise TransportError(
                f"notice {subject!r}: {e.reason}; it may or may not have been sent"
            ) from None
        except Retryable as e:
            raise TransportError(f"notice {subject!r} not sent: {e.reason}") from None


def from_config(
    config: Config,
    api_key: str,
    *,
    host: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> SendGridTransport:
    """The transport as config.toml describes it; `host` overrides [sendgrid] host."""
    sg = config.model.sendgrid
    sender = config.model.sender
    return SendGridTransport(
        api_key,
        host=host or sg.host,
        from_email=sender.from_email,
        from_name=sender.from_name,
        reply_to=sender.reply_to,
        batch_size=sg.batch_size,
        timeout=sg.timeout,
        retries=sg.retries,
        max_rate_limit_wait=sg.max_rate_limit_wait,
        asm_group_id=sg.asm_group_id,
        sandbox=sg.sandbox,
        sleep=sleep,
        clock=clock,
    )
