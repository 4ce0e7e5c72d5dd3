"""Making the transport a send uses: SendGrid when SENDGRID_API_KEY is set, else the outbox.

config.toml describes both; the environment holds what config.toml must not (the key) and may
override the SendGrid host (NEWSFLASH_SENDGRID_HOST, e.g. for a local fake in tests).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.transports import sendgrid
from newsflash.transports.base import ENV_KEY, Transport, default_transport_name
from newsflash.transports.outbox import OutboxTransport

__all__ = ["DRY_RUN_KEY", "ENV_HOST", "ENV_KEY", "TRANSPORTS", "make_transport"]

ENV_HOST = "NEWSFLASH_SENDGRID_HOST"
TRANSPORTS = ("sendgrid", "outbox")
DRY_RUN_KEY = "SG.dry-run-placeholder"


def make_transport(
    config: Config,
    name: str | None = None,
    *,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Transport:
    """'sendgrid' or 'outbox' (default: `default_transport_name`), configured from config.toml.

    The SendGrid host is config.toml [sendgrid] host unless NEWSFLASH_SENDGRID_HOST is set. A
    dry run may build a SendGrid transport without a key: it never sends.
    """
    name = name or default_transport_name()
    if name == "outbox":
        return OutboxTransport(
            config.outbox_dir,
            from_email=config.model.sender.from_email,
            from_name=config.model.sender.from_name,
            batch_size=config.model.sendgrid.batch_size,
        )
    if name == "sendgrid":
        return _sendgrid(config, dry_run=dry_run, sleep=sleep)
    raise NewsflashError(f"unknown transport {name!r}; use one of: {', '.join(TRANSPORTS)}")


def _sendgrid(
    config: Config, *, dry_run: bool, sleep: Callable[[float], None]
) -> sendgrid.SendGridTransport:
    key = os.environ.get(ENV_KEY, "")
    if not key.strip():
        if not dry_run:
            raise NewsflashError(
                f"sending through SendGrid needs the API key in the environment: "
                f"{sendgrid.KEY_HELP}, e.g. `export {ENV_KEY}=SG.…` in the shell that runs "
                "newsflash. Without a key, newsflash writes .eml files to outbox/ instead."
            )
        key = DRY_RUN_KEY
    env_host = os.environ.get(ENV_HOST, "").strip()
    host = (
        sendgrid.check_host(env_host, ENV_HOST)
        if env_host
        else sendgrid.check_host(config.model.sendgrid.host, f"{config.path} [sendgrid] host")
    )
    return sendgrid.from_config(config, key, host=host, sleep=sleep)
