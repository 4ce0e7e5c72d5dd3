"""Approval: the reviewers sign the manifest they saw, and only that manifest may go out.

`approve` builds the edition afresh and records its manifest hash in the ledger
(`Ledger.record_approval`), and the whole manifest in ``state/approvals/<edition>.json`` so that
at send time we can say *what* changed since, not only *that* something did: an item added,
removed or edited (by path), the template or config.toml changed. The file is the reference;
it does not depend on which transport's ledger a later send uses.

Every build whose manifest is compared with an approval (`approve`, `status`, the proof and
the scheduled send) counts items as published by `ledgers.publication_ledger_name`, never by
the transport of the shell it runs in: a reviewer's shell has no SENDGRID_API_KEY, the service
has one, and they must build the same edition.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from newsflash.config import Config
from newsflash.errors import BuildError, NewsflashError, NotApproved
from newsflash.files import write_atomic
from newsflash.months import local_time, parse_edition_id
from newsflash.pipeline import BuiltEdition
from newsflash.state.ledgers import build_edition, default_ledger_name, open_existing, open_ledger

__all__ = [
    "Approval",
    "ApprovalState",
    "approval_state",
    "approve",
    "diff_manifests",
    "load_approval",
    "require_approved",
    "status_line",
]

APPROVALS_DIR = "approvals"
State = Literal["approved", "unapproved", "changed"]


@dataclass(frozen=True)
class Approval:
    edition_id: str
    manifest_hash: str
    manifest: dict[str, Any]
    approved_by: str
    approved_at: str


@dataclass(frozen=True)
class ApprovalState:
    edition_id: str
    state: State
    approval: Approval | None
    manifest_hash: str
    changes: tuple[str, ...] = ()
    timezone: str = "UTC"  # the newsletter's: the approval's time is shown on its clock

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    def describe(self) -> str:
        """One paragraph a reviewer can act on."""
        e = self.edition_id
        when = local_time(self.approval.approved_at, self.timezone) if self.approval else ""
        if self.state == "approved" and self.approval is not None:
            return (
                f"edition {e} is approved (by {self.approval.approved_by} at "
                f"{when}, manifest {self.manifest_hash[:12]})"
            )
        if self.state == "unapproved":
            return (
                f"edition {e} is not approved. Review the proof, then approve it with: "
                f"newsflash approve {e}"
            )
        assert self.approval is not None
        lines = [f"edition {e} changed since {self.approval.approved_by} approved it at {when}:"]
        lines += [f"  - {c}" for c in self.changes]
        lines.append(
            f"Review the new proof (newsflash build {e}), then approve it again with: "
            f"newsflash approve {e}"
        )
        return "\n".join(lines)


def _dir(config: Config) -> Path:
    return config.state_dir / APPROVALS_DIR


def _file(config: Config, edition_id: str) -> Path:
    parse_edition_id(edition_id)  # ids become file names: only YYYY-MM
    return _dir(config) / f"{edition_id}.json"


def approve(
    config: Config, edition_id: str, by: str, build: BuiltEdition | None = None
) -> Approval:
    """Record the manifest of the edition as it builds now; the latest approval counts."""
    by = by.strip()
    if not by:
        raise NewsflashError("say who approves: newsflash approve EDITION --by NAME")
    ledger_name = default_ledger_name(config)
    # Built against the publication ledger (build_edition's default), as the proof, `status`
    # and the scheduled send build it, with or without SENDGRID_API_KEY in this shell.
    build = build or build_edition(config, edition_id)
    errors = [c.message for c in build.email.checks if c.level == "error"]
    if errors:
        raise BuildError(
            f"edition {edition_id} fails its checks, so it can't be approved: " + "; ".join(errors)
        )
    if not build.edition.items:
        raise BuildError(
            f"edition {edition_id} has no items; there is nothing to approve "
            "(see `newsflash build` for what was left out)"
        )
    manifest = dict(build.edition.manifest)
    approval = Approval(
        edition_id=edition_id,
        manifest_hash=build.edition.manifest_hash,
        manifest=manifest,
        approved_by=by,
        approved_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    doc = {
        "edition": edition_id,
        "manifest_hash": approval.manifest_hash,
        "approved_by": by,
        "approved_at": approval.approved_at,
        "manifest": manifest,
    }
    write_atomic(_file(config, edition_id), json.dumps(doc, indent=2, sort_keys=True) + "\n")
    with open_ledger(config, ledger_name) as ledger:
        ledger.record_approval(edition_id, approval.manifest_hash, by)
    return approval


def load_approval(config: Config, edition_id: str) -> Approval | None:
    """The recorded approval; from the ledger alone (hash only) if the file is missing."""
    path = _file(config, edition_id)
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return Approval(
                edition_id=edition_id,
                manifest_hash=str(doc["manifest_hash"]),
                manifest=dict(doc.get("manifest") or {}),
                approved_by=str(doc.get("approved_by", "")),
                approved_at=str(doc.get("approved_at", "")),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise NewsflashError(
                f"{path} can't be read ({e}); approve the edition again with "
                f"`newsflash approve {edition_id}`"
            ) from None
    ledger = open_existing(config, default_ledger_name(config))
    if ledger is None:
        return None
    with ledger:
        row = ledger.approval(edition_id)
    if row is None:
        return None
    return Approval(edition_id, row[0], {}, row[2], row[1])


def approval_state(config: Config, edition_id: str, build: BuiltEdition) -> ApprovalState:
    """Compare the freshly built edition with what the reviewers approved."""
    current = build.edition.manifest_hash
    approval = load_approval(config, edition_id)
    zone = config.model.newsletter.timezone
    if approval is None:
        return ApprovalState(edition_id, "unapproved", None, current, timezone=zone)
    # One an older newsflash recorded of these same files and settings still holds.
    if build.edition.known_as(approval.manifest_hash):
        return ApprovalState(edition_id, "approved", approval, current, timezone=zone)
    changes = diff_manifests(approval.manifest, build.edition.manifest)
    return ApprovalState(edition_id, "changed", approval, current, tuple(changes), zone)


def diff_manifests(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two edition manifests, in words, items first."""
    if not old:
        return ["the content changed (the approved manifest was not kept, so no details)"]

    def items(m: dict[str, Any]) -> dict[str, str]:
        return {
            str(i.get("path")): str(i.get("sha256"))
            for i in m.get("items", [])
            if isinstance(i, dict)
        }

    a, b = items(old), items(new)
    out = [f"item added: {p}" for p in sorted(b.keys() - a.keys())]
    out += [f"item removed: {p}" for p in sorted(a.keys() - b.keys())]
    out += [f"item edited: {p}" for p in sorted(a.keys() & b.keys()) if a[p] != b[p]]
    if old.get("template_sha256") != new.get("template_sha256"):
        out.append("the templates changed (templates/)")
    if old.get("config_sha256") != new.get("config_sha256"):
        out.append("config.toml changed (it sets the edition's title, sections and footer)")
    if not out:
        out.append("the manifest changed")
    return out


def status_line(config: Config, edition_id: str, build: BuiltEdition | None = None) -> str:
    """For `newsflash status`: the approval state of the edition as it builds now."""
    required = config.model.schedule.require_approval
    if build is None:
        build = build_edition(config, edition_id)  # the publication ledger, as the send
    text = approval_state(config, edition_id, build).describe()
    if not required:
        text += " (approval is not required: [schedule] require_approval = false)"
    return text


def require_approved(config: Config, edition_id: str, build: BuiltEdition) -> None:
    """Refuse to send what the reviewers did not approve, when config.toml asks for approval.

    The scheduled send holds such an edition and tells the reviewers; a send by hand stops
    with the same description (NotApproved), so no way out bypasses the secretariat's rule.
    """
    if not config.model.schedule.require_approval:
        return
    state = approval_state(config, edition_id, build)
    if not state.approved:
        raise NotApproved(
            f"held, nothing sent: {state.describe()}\n(config.toml [schedule] "
            "require_approval = true: an edition goes out only as it was approved.)",
            description=state.describe(),
        )
