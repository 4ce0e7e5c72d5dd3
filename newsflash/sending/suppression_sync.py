"""`newsflash suppressions sync`: the local store and SendGrid's lists brought into step.

One pass, in an order that can only err on the side of not mailing:

1. Read every SendGrid list whole (bounces, blocks, spam reports, invalid emails, global
   unsubscribes, and the [sendgrid] asm_group_id group's). If any read fails, stop: nothing
   local has changed and the store is as usable as before.
2. Record what SendGrid has and the store lacks (source ``sync``, SendGrid's ``created`` time).
   Global and group unsubscribes count as one kind: a partner on both is one unsubscribe.
   Blocks are counted, not recorded: SendGrid itself mails a blocked address again, and so
   does the webhook's rule for a ``blocked`` event.
3. Carry lifts made here to SendGrid: an address lifted by hand or by a partner's undo, still
   on SendGrid's list from before the lift, is deleted there (else SendGrid would go on dropping
   the mail newsflash now sends, and the next pull would suppress it again). An entry SendGrid
   made *after* the lift is a new opt-out and is recorded instead.
4. Push newsflash's own unsubscribes (one-click, by hand) that SendGrid does not have, to the
   ASM group when one is configured, else to the global list.

Run twice, the second run changes nothing. A pull never lifts anything: an address suppressed
here and gone from SendGrid stays suppressed (lift it by hand if that is meant).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from newsflash.config import Config
from newsflash.errors import NewsflashError
from newsflash.state.suppressions import (
    NewSuppression,
    Suppression,
    SuppressionError,
    SuppressionStore,
    normalise_address,
)
from newsflash.state.sync_log import SyncLog
from newsflash.transports.factory import ENV_HOST, ENV_KEY
from newsflash.transports.sendgrid_client import check_host
from newsflash.transports.suppressions_api import (
    GROUP,
    KEY_HELP,
    LISTS,
    PAGE_SIZE,
    Pulled,
    RemoteEntry,
    SuppressionsAPI,
    SuppressionSyncError,
)

__all__ = [
    "PUSHED_SOURCES",
    "SyncOutcome",
    "SyncReport",
    "key_and_host",
    "sync_before_send",
    "sync_for_send",
    "sync_suppressions",
]

#: The store's reason for each SendGrid list (None: counted only).
REASON_OF: dict[str, str | None] = {
    "bounces": "bounce",
    "blocks": None,
    "spam_reports": "spamreport",
    "invalid_emails": "invalid",
    "unsubscribes": "unsubscribe",
    GROUP: "group_unsubscribe",
}
_KIND = {"group_unsubscribe": "unsubscribe"}  # reasons that are one kind of opt-out
#: Sources whose unsubscribes SendGrid cannot know of unless newsflash tells it.
PUSHED_SOURCES = frozenset({"one-click", "by hand"})
#: Lifts SendGrid made itself (a group resubscribe) or that a sync made: nothing to carry.
_NOT_CARRIED = frozenset({"webhook", "sync"})
PUSH_CHUNK = 1000

Clock = Callable[[], datetime]


def _kind(reason: str) -> str:
    return _KIND.get(reason, reason)


@dataclass
class SyncReport:
    """What one sync read, recorded, removed and pushed, and what went wrong on the way."""

    host: str
    pulled: dict[str, int] = field(default_factory=dict)
    recorded: Counter[str] = field(default_factory=Counter)
    removed: list[tuple[str, str]] = field(default_factory=list)
    pushed: int = 0
    push_target: str = "global unsubscribes"
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.recorded or self.removed or self.pushed)

    def lines(self) -> list[str]:
        read = ", ".join(f"{n:,} {_label(name)}" for name, n in self.pulled.items())
        lines = [f"read from SendGrid ({self.host}): {read}"]
        recorded = sum(self.recorded.values())
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(self.recorded.items()))
        lines.append(f"recorded {recorded} new suppression(s)" + (f": {detail}" if detail else ""))
        lines.append(
            f"pushed {self.pushed} newsflash unsubscribe(s) to SendGrid's {self.push_target}"
        )
        for email, name in self.removed:
            lines.append(f"removed {email} from SendGrid's {_label(name)}: it was lifted here")
        if self.pulled.get("blocks"):
            lines.append(
                f"{self.pulled['blocks']:,} blocked address(es) at SendGrid are not suppressed: "
                "SendGrid tries them again, and so does newsflash"
            )
        lines += [f"skipped: {p}" for p in self.problems]
        lines += [f"error: {e}" for e in self.errors]
        return lines


def _label(name: str) -> str:
    return "ASM group unsubscribes" if name == GROUP else LISTS[name]


@dataclass(frozen=True)
class SyncOutcome:
    """What the sync before a send did: a report, or why SendGrid could not be used."""

    report: SyncReport | None
    error: str | None

    def line(self) -> str:
        if self.report is not None:
            return "suppressions synced with SendGrid: " + "; ".join(self.report.lines()[1:3])
        return (
            f"suppressions not synced with SendGrid ({self.error}); going on with the local store"
        )


def sync_suppressions(
    config: Config,
    store: SuppressionStore,
    api_key: str,
    *,
    host: str | None = None,
    log: SyncLog | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    page_size: int = PAGE_SIZE,
) -> SyncReport:
    """One sync (module docstring). Raises SuppressionSyncError when the lists cannot be read;
    a failure after that (removing, pushing) is in the report's `errors`, the rest kept."""
    now = clock or (lambda: datetime.now(UTC))
    api = SuppressionsAPI.from_config(config, api_key, host=host, sleep=sleep, page_size=page_size)
    group = config.model.sendgrid.asm_group_id
    remote = _pull_all(api, group)
    report = SyncReport(api.host, {name: len(p.entries) for name, p in remote.items()})
    if group is not None:
        report.push_target = f"ASM group {group}"
    own_log = log is None
    log = log or SyncLog.in_state(config.state_dir)
    try:
        plan = _plan(remote, store.rows(include_lifted=True), log.carried(), report)
        for added in store.add_many(plan.adds):
            report.recorded[added.reason] += 1
        _carry_lifts(api, plan, group, log, now(), report)
        _push(api, plan.to_push, group, report)
    finally:
        if own_log:
            log.close()
    return report


def sync_before_send(
    config: Config,
    store: SuppressionStore,
    api_key: str,
    *,
    host: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncOutcome:
    """The sync a send with a key runs first. Never raises for SendGrid: returns what happened,
    and the send goes on with the local store (which a failed pull leaves as it was)."""
    try:
        report = sync_suppressions(config, store, api_key, host=host, sleep=sleep)
    except SuppressionSyncError as e:
        return SyncOutcome(None, str(e))
    return SyncOutcome(report, "; ".join(report.errors) or None)


def sync_for_send(config: Config, ledger_name: str) -> str:
    """The line to show for the sync a send through SendGrid runs first ('' for none: the
    outbox, sandbox mode, or [sendgrid] sync_before_send = false)."""
    if ledger_name != "sendgrid" or not config.model.sendgrid.sync_before_send:
        return ""
    try:
        key, host = key_and_host(config)
    except NewsflashError as e:
        return SyncOutcome(None, str(e)).line()
    store = SuppressionStore.in_state(config.state_dir)
    try:
        return sync_before_send(config, store, key, host=host).line()
    finally:
        store.close()


def key_and_host(config: Config) -> tuple[str, str]:
    """SENDGRID_API_KEY, and the host a send would use (NEWSFLASH_SENDGRID_HOST wins)."""
    key = os.environ.get(ENV_KEY, "")
    if not key.strip():
        raise NewsflashError(
            f"syncing with SendGrid needs {ENV_KEY} in the environment: {KEY_HELP}. Without "
            "it, newsflash goes on with its own suppression list (state/suppressions.sqlite)."
        )
    env_host = os.environ.get(ENV_HOST, "").strip()
    if env_host:
        return key, check_host(env_host, ENV_HOST)
    return key, check_host(config.model.sendgrid.host, f"{config.path} [sendgrid] host")


def _pull_all(api: SuppressionsAPI, group: int | None) -> dict[str, Pulled]:
    remote = {name: api.pull(name) for name in LISTS}
    if group is not None:
        remote[GROUP] = api.pull_group(group)  # last: its entries carry no time
    return remote


@dataclass
class _Plan:
    adds: list[NewSuppression] = field(default_factory=list)
    removes: list[tuple[str, str]] = field(default_factory=list)  # (list, address)
    carried: list[int] = field(default_factory=list)  # lift ids to mark once removes succeed
    to_push: list[str] = field(default_factory=list)


def _plan(
    remote: dict[str, Pulled],
    rows: Iterable[Suppression],
    carried: frozenset[int],
    report: SyncReport,
) -> _Plan:
    rows = list(rows)
    active = {(r.address, _kind(r.reason)) for r in rows if r.active}
    lifts: dict[tuple[str, str], list[Suppression]] = {}
    for r in rows:
        key = (r.address, _kind(r.reason))
        pending = not r.active and r.lifted_by not in _NOT_CARRIED and r.id not in carried
        if pending and key not in active:
            lifts.setdefault(key, []).append(r)
    plan = _Plan()
    plan.carried = [r.id for same in lifts.values() for r in same]
    on_sendgrid: set[str] = set()
    for name, pulled in remote.items():
        report.problems += pulled.problems
        reason = REASON_OF[name]
        for entry in pulled.entries:
            address = _address(entry, name, report)
            if address is None or reason is None:
                continue
            if _kind(reason) == "unsubscribe":
                on_sendgrid.add(address)
            key = (address, _kind(reason))
            if key in active:
                continue
            lifted = max((r.lifted_at or "" for r in lifts.get(key, ())), default=None)
            if lifted is not None and (entry.created is None or _iso(entry.created) <= lifted):
                plan.removes.append((name, address))
                continue
            active.add(key)
            detail = f"SendGrid {_label(name)}" + (f": {entry.detail}" if entry.detail else "")
            at = datetime.fromtimestamp(entry.created, UTC) if entry.created is not None else None
            plan.adds.append(NewSuppression(address, reason, "sync", detail, at))
    plan.to_push = sorted(
        {
            r.address
            for r in rows
            if r.active
            and _kind(r.reason) == "unsubscribe"
            and r.source in PUSHED_SOURCES
            and r.address not in on_sendgrid
        }
    )
    return plan


def _address(entry: RemoteEntry, name: str, report: SyncReport) -> str | None:
    try:
        return normalise_address(entry.email)
    except SuppressionError as e:
        report.problems.append(f"SendGrid's {_label(name)}: {e}")
        return None


def _iso(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds")


def _carry_lifts(
    api: SuppressionsAPI,
    plan: _Plan,
    group: int | None,
    log: SyncLog,
    now: datetime,
    report: SyncReport,
) -> None:
    """Delete lifted addresses from SendGrid's lists; mark the lifts carried if all went."""
    try:
        for name, address in plan.removes:
            api.remove(name, address, group)
            report.removed.append((address, name))
    except SuppressionSyncError as e:
        report.errors.append(f"removing lifted addresses from SendGrid stopped: {e}")
        return
    log.mark(plan.carried, now)


def _push(api: SuppressionsAPI, emails: list[str], group: int | None, report: SyncReport) -> None:
    try:
        for start in range(0, len(emails), PUSH_CHUNK):
            chunk = emails[start : start + PUSH_CHUNK]
            if group is None:
                api.add_global(chunk)
            else:
                api.add_to_group(group, chunk)
            report.pushed += len(chunk)
    except SuppressionSyncError as e:
        report.errors.append(f"pushing unsubscribes to SendGrid stopped: {e}")
