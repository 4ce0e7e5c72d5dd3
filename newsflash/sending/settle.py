"""Uncertain batches settle themselves: SendGrid's events say who of them was accepted.

Where: when `newsflash status` and `newsflash send` (and its dry run) read the ledger, not when
the webhook stores an event. The events are on disk the moment the webhook answers
(state/events.sqlite), so nothing waits on this; a batch a killed send left *in flight* can only
be settled by whoever holds the edition's send lock, which the webhook must never take; and the
webhook stays one write to one file, never contending with a running send for the ledger. The
ledger stays the one record of who was sent: what the events prove is written into it
(state/ledger_settle.py) before anything is counted or resent.

Only SendGrid's own ledger is settled: the outbox and sandbox mode deliver nothing, so no event
can be about them.

`--resend-uncertain` then resends only who no event vouched for, and only once their batch went
out `[sendgrid] resend_uncertain_after_minutes` ago (default 60): SendGrid's `processed` event
usually comes within seconds, but a webhook that was down gets its events late.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsflash.config import Config
from newsflash.state.events import EventStore
from newsflash.state.ledger import Ledger

__all__ = ["SETTLED_LEDGER", "held_back_note", "settle_from_events", "uncertain_cutoff"]

SETTLED_LEDGER = "sendgrid"


def settle_from_events(config: Config, ledger: Ledger, ledger_name: str, edition_id: str) -> int:
    """Record as accepted every doubtful recipient an event vouches for; how many."""
    if ledger_name != SETTLED_LEDGER:
        return 0
    path = config.state_dir / "events.sqlite"
    if not path.exists():
        return 0  # `newsflash serve` never stored an event: nothing to learn
    doubtful = {d.recipient.recipient_id: d.recipient.email for d in ledger.doubtful(edition_id)}
    if not doubtful:
        return 0
    events = EventStore(path)
    try:
        vouched = events.vouched(edition_id, doubtful)
    finally:
        events.close()
    return ledger.settle(edition_id, vouched)


def _wait(config: Config) -> timedelta:
    return timedelta(minutes=config.model.sendgrid.resend_uncertain_after_minutes)


def uncertain_cutoff(config: Config, now: datetime | None = None) -> str:
    """The ledger timestamp by which an uncertain batch must have gone out to be resent."""
    moment = (now or datetime.now(UTC)) - _wait(config)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def held_back_note(
    config: Config, ledger: Ledger, edition_id: str, now: datetime | None = None
) -> str:
    """Why `--resend-uncertain` leaves some recipients for now, and from when it takes them
    ('' when it holds nobody back)."""
    n, first = ledger.held_back(edition_id, uncertain_cutoff(config, now))
    if not n or first is None:
        return ""
    minutes = config.model.sendgrid.resend_uncertain_after_minutes
    sent = datetime.fromisoformat(first).astimezone(UTC)
    ready = sent + _wait(config)
    return (
        f"{n} uncertain recipient(s) are not resent yet: their batch went out at "
        f"{sent:%Y-%m-%d %H:%M:%S} UTC, and SendGrid's events (newsflash serve) may still show "
        f"they got it. Run `newsflash send {edition_id} --resend-uncertain` again from "
        f"{ready:%Y-%m-%d %H:%M:%S} UTC ([sendgrid] resend_uncertain_after_minutes = "
        f"{minutes:g}) to resend those no event has vouched for."
    )
