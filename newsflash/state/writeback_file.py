"""`newsflash subscribers apply` on disk: locks, a dated backup, one atomic replace.

The partner list is the only copy of something the secretariat typed, so nothing here can
lose it: the new bytes go to a temporary file that replaces the list in one rename (a SIGKILL
leaves the old file or the new one, never half of one), after a backup of the old bytes has
been written and synced next to it. It never runs beside a send: the send locks every edition
file in state/locks/, and apply takes each existing one itself (refusing if one is held), so a
send cannot start halfway through either.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsflash.files import LockHeld, lock_exclusive, unlock, write_atomic
from newsflash.state.suppressions import SuppressionStore
from newsflash.state.writeback import StoreView, WriteBack, WriteBackError, plan_writeback
from newsflash.subscribers import read_list

__all__ = [
    "APPLY_LOCK",
    "WRITTEN_FILE",
    "Applied",
    "SendRunningError",
    "apply_statuses",
    "summary_lines",
]

APPLY_LOCK = "subscribers-apply.lock"  # in state/, not state/locks/ (those are editions')
WRITTEN_FILE = "subscribers-applied.json"  # what apply has written, so a lift undoes only that
_SEND_LOCKS = "locks"  # the ledger's per-edition send locks: state/locks/<edition>.lock


class SendRunningError(WriteBackError):
    """A send (or another apply) holds its lock; the list is not changed under it."""


@dataclass(frozen=True, slots=True)
class Applied:
    path: Path
    plan: WriteBack
    backup: Path | None  # None when nothing was written (no change, or a dry run)
    dry_run: bool
    leftovers_removed: int = 0  # temporary files of an apply that was killed


def apply_statuses(
    csv_path: Path,
    state_dir: Path,
    *,
    clock: Callable[[], datetime],
    dry_run: bool = False,
) -> Applied:
    """Write the store's statuses into the list; a dry run reads the same and writes nothing."""
    path = csv_path.resolve()  # a symlinked list stays a symlink: its target is replaced
    if dry_run:
        return Applied(path, _plan(path, state_dir)[1], None, dry_run=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    with _no_send_running(state_dir):
        removed = _remove_leftovers(path) + _remove_leftovers(state_dir / WRITTEN_FILE)
        old, plan = _plan(path, state_dir)
        backup = _write(path, old, plan, clock) if plan.changes else None
        if plan.written != _written_before(state_dir):  # after the list: see _written_before
            write_atomic(state_dir / WRITTEN_FILE, _written_json(plan), mode=0o600, durable=True)
        return Applied(path, plan, backup, dry_run=False, leftovers_removed=removed)


def _plan(path: Path, state_dir: Path) -> tuple[bytes, WriteBack]:
    data = read_list(path)
    return data, plan_writeback(data, _store_views(state_dir), path, _written_before(state_dir))


def _store_views(state_dir: Path) -> dict[str, StoreView]:
    """Active and lifted reasons by address; no store yet means nothing to write back."""
    store_path = state_dir / "suppressions.sqlite"
    if not store_path.exists():
        return {}
    store = SuppressionStore(store_path)
    try:
        rows = store.rows(include_lifted=True)
    finally:
        store.close()
    active: dict[str, set[str]] = {}
    lifted: dict[str, set[str]] = {}
    for row in rows:
        (active if row.active else lifted).setdefault(row.address, set()).add(row.reason)
    return {
        address: StoreView(frozenset(active.get(address, ())), frozenset(lifted.get(address, ())))
        for address in active.keys() | lifted.keys()
    }


def _written_before(state_dir: Path) -> dict[str, str]:
    """What earlier applies wrote. It is saved after the list, never before: a kill between
    the two loses an entry, so a later lift leaves that row for a human (and says so), where
    an entry for a status the list never got could resubscribe someone unsubscribed by hand."""
    path = state_dir / WRITTEN_FILE
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise WriteBackError(
            f"{path} cannot be read ({exc}); it records which statuses `subscribers apply` "
            "wrote. Restore it from a backup, or delete it (lifted suppressions are then not "
            "undone in the list: change those rows by hand)"
        ) from None
    written = loaded.get("written") if isinstance(loaded, dict) else None
    if not isinstance(written, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in written.items()
    ):
        raise WriteBackError(
            f'{path} is not what `subscribers apply` writes ({{"written": {{address: status}}}}); '
            "restore it from a backup, or delete it (lifted suppressions are then not undone "
            "in the list: change those rows by hand)"
        )
    return dict(written)


def _written_json(plan: WriteBack) -> str:
    return json.dumps({"version": 1, "written": dict(sorted(plan.written.items()))}, indent=1)


@contextlib.contextmanager
def _no_send_running(state_dir: Path) -> Iterator[None]:
    """Hold apply's own lock and every edition's send lock, or refuse naming the holder.

    A lock file for an edition that never ran a send does not exist yet; a send of it that
    starts now reads the list either before or after the one rename, never half of it.
    """
    held: list[int] = []
    try:
        held.append(_take(state_dir / APPLY_LOCK, "another `newsflash subscribers apply`"))
        for lock in sorted((state_dir / _SEND_LOCKS).glob("*.lock")):
            held.append(_take(lock, f"a send of edition {lock.stem}"))
        yield
    finally:
        for fd in reversed(held):
            unlock(fd)


def _take(lock: Path, who: str) -> int:
    try:
        return lock_exclusive(lock)
    except LockHeld as exc:
        raise SendRunningError(
            f"{who} is running (pid {exc.holder}, lock {lock}); subscribers.csv is not "
            "changed while it runs: run `newsflash subscribers apply` again once it has finished"
        ) from None


def _remove_leftovers(path: Path) -> int:
    """Temporary files write_atomic left for `path` when an apply was killed mid-write (we
    hold the lock, so none of them is being written now)."""
    removed = 0
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def _write(path: Path, old: bytes, plan: WriteBack, clock: Callable[[], datetime]) -> Path:
    """Backup first, synced; then the list, unless someone saved it since it was read."""
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    backup = _backup_path(path, clock())
    write_atomic(backup, old, mode=mode, durable=True)
    if read_list(path) != old:
        backup.unlink()
        raise WriteBackError(
            f"{path} was saved by someone else while apply was running, so it is not changed; "
            "close it in your spreadsheet and run `newsflash subscribers apply` again"
        )
    write_atomic(path, plan.data, mode=mode, durable=True)
    _keep_owner(path, info)
    return backup


def _backup_path(path: Path, now: datetime) -> Path:
    """subscribers.csv.2026-06-17T140000.bak, with -2, -3 ... if one run follows another
    within the second: a backup is never overwritten."""
    stem = f"{path.name}.{now.strftime('%Y-%m-%dT%H%M%S')}"
    candidate = path.with_name(f"{stem}.bak")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{stem}-{n}.bak")
        n += 1
    return candidate


def _keep_owner(path: Path, info: os.stat_result) -> None:
    """Run as root (a service), the new file would be root's and the secretariat locked out."""
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.chown(path, info.st_uid, info.st_gid)


def summary_lines(applied: Applied) -> list[str]:
    """What apply tells the secretariat: each change, each row left alone and why."""
    plan, path = applied.plan, applied.path
    verb = "would change" if applied.dry_run else "changed"
    out = [f"{path}: {verb} {len(plan.changes)} status(es)"]
    out += [f"  line {c.line}: {c.address}: {c.old} -> {c.new} ({c.why})" for c in plan.changes]
    if plan.notes:
        out.append(f"left as they are ({len(plan.notes)}):")
        out += [f"  line {n.line}: {n.address}: {n.message}" for n in plan.notes]
    if plan.not_on_list:
        out.append(f"suppressed but not on the list, not added ({len(plan.not_on_list)}):")
        out += [f"  {a}" for a in plan.not_on_list]
    if plan.skipped_lines:
        shown = ", ".join(str(n) for n in plan.skipped_lines[:20])
        more = f" and {len(plan.skipped_lines) - 20} more" if len(plan.skipped_lines) > 20 else ""
        out.append(
            f"rows with errors, left byte for byte (lines {shown}{more}); "
            "see `newsflash subscribers`"
        )
    if applied.backup is not None:
        out.append(f"the old file is kept as {applied.backup}")
    elif applied.dry_run and plan.changes:
        out.append("dry run: nothing written")
    elif not plan.changes:
        out.append("nothing to change: the file is as it was, and no backup was written")
    if applied.leftovers_removed:
        out.append(f"removed {applied.leftovers_removed} temporary file(s) of an interrupted apply")
    return out
