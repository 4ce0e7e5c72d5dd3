"""Approval: the reviewers sign a manifest; the scheduled send holds anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from calendar_helpers import (
    REVIEWER,
    at,
    body,
    notices,
    running,
    sent_files,
    set_schedule,
    soon,
    wait_for,
)
from click.testing import CliRunner

from newsflash import jobs
from newsflash.approval import approval_state, approve, diff_manifests
from newsflash.cli import main
from newsflash.config import Config
from newsflash.errors import BuildError
from newsflash.ledger import Ledger
from newsflash.pipeline import build_edition, current_edition_id, ledger_path

FAR = {"day": "1st tue", "hour": 9}
ITEM = "2022-02/wg1-meeting-17-january.md"


@pytest.fixture
def config(workspace: Path) -> Config:
    return set_schedule(workspace, jobs={"send": FAR}, require_approval=True)


def edit(config: Config, key: str, old: str, new: str) -> None:
    path = config.submissions_dir / key
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_approve_records_the_manifest_hash_in_the_ledger_and_the_manifest_in_state(
    config: Config,
) -> None:
    edition = current_edition_id(config)
    build = build_edition(config, edition)
    approval = approve(config, edition, "ana")
    assert approval.manifest_hash == build.edition.manifest_hash
    with Ledger(ledger_path(config, "outbox")) as ledger:
        recorded = ledger.approval(edition)
    assert recorded is not None and recorded[0] == approval.manifest_hash and recorded[2] == "ana"
    doc = json.loads((config.state_dir / "approvals" / f"{edition}.json").read_text())
    assert doc["manifest"]["items"] == build.edition.manifest["items"]
    state = approval_state(config, edition, build_edition(config, edition))
    assert state.state == "approved" and state.approved


def test_an_edition_never_approved_is_unapproved(config: Config) -> None:
    edition = current_edition_id(config)
    state = approval_state(config, edition, build_edition(config, edition))
    assert state.state == "unapproved"
    assert f"newsflash approve {edition}" in state.describe()


def test_every_kind_of_change_after_approval_is_named(config: Config) -> None:
    edition = current_edition_id(config)
    approve(config, edition, "ana")
    edit(config, ITEM, "title:", "title: Edited -")
    (config.submissions_dir / "2022-02" / "battery-albatts-results.md").unlink()
    (config.submissions_dir / "late-news.md").write_text(
        "---\ntitle: Late news\nsection: alliance\ndate: 2022-02-20\n---\nText.\n", encoding="utf-8"
    )
    (config.templates_dir / "edition.txt.j2").write_text(
        (config.templates_dir / "edition.txt.j2").read_text(encoding="utf-8") + "\n",
        encoding="utf-8",
    )
    state = approval_state(config, edition, build_edition(config, edition))
    assert state.state == "changed"
    assert state.changes == (
        "item added: late-news.md",
        "item removed: 2022-02/battery-albatts-results.md",
        f"item edited: {ITEM}",
        "the templates changed (templates/)",
    )
    assert f"newsflash approve {edition}" in state.describe()


def test_a_config_change_after_approval_is_named() -> None:
    old = {"items": [], "template_sha256": "t", "config_sha256": "a"}
    assert diff_manifests(old, {**old, "config_sha256": "b"}) == [
        "config.toml changed (it sets the edition's title, sections and footer)"
    ]
    assert "no details" in diff_manifests({}, old)[0]


def test_approving_again_accepts_the_change(config: Config) -> None:
    edition = current_edition_id(config)
    approve(config, edition, "ana")
    edit(config, ITEM, "title:", "title: Edited -")
    approve(config, edition, "ben")
    state = approval_state(config, edition, build_edition(config, edition))
    assert state.approved and state.approval is not None
    assert state.approval.approved_by == "ben"


def test_an_edition_with_no_items_cannot_be_approved(config: Config) -> None:
    for path in config.submissions_dir.rglob("*.md"):
        path.unlink()
    with pytest.raises(BuildError, match="no items"):
        approve(config, current_edition_id(config), "ana")


def test_approval_is_held_when_an_item_changes_after_approval_and_reviewers_are_told(
    workspace: Path,
) -> None:
    t = soon(1.5)
    config = set_schedule(workspace, jobs={"send": at(t)}, require_approval=True)
    edition = current_edition_id(config)
    approve(config, edition, "ana")
    edit(config, ITEM, "title:", "title: Edited after approval -")
    with running(config):
        wait_for(lambda: notices(config), timeout=10)
    assert not sent_files(config, edition)  # held: nothing went out
    (notice,) = notices(config)
    assert notice["To"] == REVIEWER
    assert "NOT sent" in str(notice["Subject"]) and "held" in str(notice["Subject"])
    text = body(notice)
    assert f"item edited: {ITEM}" in text
    assert f"newsflash approve {edition}" in text and f"newsflash send {edition}" in text


def test_an_unapproved_edition_is_held(config: Config) -> None:
    edition = current_edition_id(config)
    outcome = jobs.run_send(str(config.path))
    assert outcome.startswith(f"held edition {edition}")
    assert not sent_files(config, edition)
    assert "is not approved" in body(notices(config)[0])


def test_an_approved_unchanged_edition_is_sent(config: Config) -> None:
    edition = current_edition_id(config)
    approve(config, edition, "ana")
    outcome = jobs.run_send(str(config.path))
    assert outcome.startswith(f"sent edition {edition}")
    assert sent_files(config, edition)


def test_approve_and_status_on_the_command_line(config: Config) -> None:
    edition = current_edition_id(config)
    runner = CliRunner()
    args = ["--config", str(config.path)]
    result = runner.invoke(main, [*args, "status", edition])
    assert result.exit_code == 0, result.output
    assert "is not approved" in result.output
    result = runner.invoke(main, [*args, "approve", edition, "--by", "ana"])
    assert result.exit_code == 0, result.output
    assert f"approved edition {edition}" in result.output and ITEM in result.output
    result = runner.invoke(main, [*args, "status", edition])
    assert "is approved (by ana" in result.output
    edit(config, ITEM, "title:", "title: Edited -")
    result = runner.invoke(main, [*args, "status", edition], env={"COLUMNS": "200"})
    assert "changed since ana approved it" in result.output
    assert f"item edited: {ITEM}" in result.output
