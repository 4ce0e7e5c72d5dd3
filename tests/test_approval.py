"""Approval: the reviewers sign a manifest; the scheduled send holds anything else."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

import pytest
from calendar_helpers import (
    REVIEWER,
    at,
    audience_size,
    body,
    notices,
    running,
    sent_files,
    set_schedule,
    soon,
    wait_for,
)
from click.testing import CliRunner
from conftest import own_template

from newsflash.cli import main
from newsflash.config import Config, load_config
from newsflash.errors import BuildError
from newsflash.pipeline import current_edition_id
from newsflash.schedule import jobs, resume
from newsflash.sending.approval import approval_state, approve, diff_manifests
from newsflash.state.ledger import Ledger
from newsflash.state.ledgers import build_edition, ledger_path

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
    own_template(config.root, "edition.txt.j2", "\n")
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


@pytest.mark.parametrize(
    ("old", "new", "still_approved"),
    [
        # Where the unsubscribe links point is part of what the reviewers approved.
        (
            'public_url = "https://newsflash.example.org"',
            'public_url = "https://other.example"',
            False,
        ),
        # Where the mail is handed over is not: moving to the EU host keeps the approval.
        ('host = "https://api.sendgrid.com"', 'host = "https://api.eu.sendgrid.com"', True),
    ],
)
def test_moving_the_unsubscribe_links_voids_the_approval_and_moving_the_sendgrid_host_does_not(
    config: Config, old: str, new: str, still_approved: bool
) -> None:
    edition = current_edition_id(config)
    approve(config, edition, "ana")
    text = config.path.read_text(encoding="utf-8")
    assert old in text
    config.path.write_text(text.replace(old, new), encoding="utf-8")
    moved = load_config(config.path)
    state = approval_state(moved, edition, build_edition(moved, edition))
    assert state.approved is still_approved


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


@pytest.fixture
def quick_held_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler looks for the approval of a held send every 0.2 s instead of every 30."""
    monkeypatch.setattr(resume, "HELD_CHECK_SECONDS", 0.2)


def test_a_send_held_for_want_of_approval_goes_out_once_approved_within_the_grace_period(
    workspace: Path, quick_held_check: None
) -> None:
    """Regression (issue 13): the reviewers were told to approve, yet only a send by hand
    would then send it."""
    t = soon(1)
    config = set_schedule(workspace, jobs={"send": at(t)}, require_approval=True, grace_hours=1)
    edition = current_edition_id(config)
    with running(config):
        wait_for(lambda: notices(config), timeout=10)
        assert not sent_files(config, edition)
        held = body(notices(config)[0])
        assert "is not approved" in held
        assert "it is sent by the scheduler within a minute of the approval" in held
        approve(config, edition, "ana")
        wait_for(lambda: len(sent_files(config, edition)) == audience_size(config), timeout=10)
    assert len(sent_files(config, edition)) == audience_size(config)
    held_notices = [m for m in notices(config) if "your item went to" not in str(m["Subject"])]
    assert len(held_notices) == 1  # no second "held" notice (the rest are the items' receipts)
    assert jobs.held_send(config) is None


def test_an_approval_given_while_the_scheduler_was_down_sends_the_held_edition_at_start(
    workspace: Path, quick_held_check: None
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR}, require_approval=True, grace_hours=1)
    edition = current_edition_id(config)
    assert jobs.run_send(str(config.path)).startswith(f"held edition {edition}")
    approve(config, edition, "ana")  # the scheduler is not running
    with running(config):
        wait_for(lambda: len(sent_files(config, edition)) == audience_size(config), timeout=10)


def test_a_held_send_approved_after_its_grace_period_is_left_for_a_send_by_hand(
    workspace: Path, quick_held_check: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = set_schedule(workspace, jobs={"send": FAR}, require_approval=True, grace_hours=1)
    edition = current_edition_id(config)
    jobs.run_send(str(config.path))
    marker = config.state_dir / jobs.HELD_FILE
    doc = json.loads(marker.read_text(encoding="utf-8"))
    doc["due"] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    marker.write_text(json.dumps(doc), encoding="utf-8")
    approve(config, edition, "ana")
    with running(config):
        wait_for(lambda: "past its grace period" in caplog.text)
        time.sleep(0.5)
    assert not sent_files(config, edition)
    assert f"send it by hand with `newsflash send {edition}`" in caplog.text
    assert jobs.held_send(config) is None


def test_a_held_edition_approved_then_changed_is_held_again_not_sent(
    workspace: Path, quick_held_check: None
) -> None:
    config = set_schedule(workspace, jobs={"send": FAR}, require_approval=True, grace_hours=1)
    edition = current_edition_id(config)
    jobs.run_send(str(config.path))
    approve(config, edition, "ana")
    edit(config, ITEM, "title:", "title: Edited after approval -")
    with running(config):
        wait_for(lambda: len(notices(config)) == 2, timeout=10)
    assert not sent_files(config, edition)
    assert f"item edited: {ITEM}" in body(notices(config)[1])
    assert jobs.held_send(config) is not None  # still waiting for an approval of this


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


def _previous_month(edition: str) -> str:
    year, month = map(int, edition.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def test_an_approval_given_without_the_sendgrid_key_is_what_the_keyed_service_sends(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's shell has no SENDGRID_API_KEY, the service has: both build one edition."""
    from fake_sendgrid import DEFAULT_API_KEY, running_server

    from newsflash.sending.approval import status_line
    from newsflash.sending.send import send_edition
    from newsflash.transports.factory import make_transport

    edition = current_edition_id(config)
    with running_server() as server:
        monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", server.url)
        # Last month really went out through SendGrid and carried every unpinned item.
        approve(config, _previous_month(edition), "ana")
        last = send_edition(config, _previous_month(edition), transport=make_transport(config))
        assert last.complete and last.transport == "sendgrid"
        (config.submissions_dir / "fresh.md").write_text(
            "---\ntitle: Fresh news\nsection: alliance\ndate: 2022-02-20\n---\nText.\n",
            encoding="utf-8",
        )

        monkeypatch.delenv("SENDGRID_API_KEY")  # the reviewer approves in her own shell
        approval = approve(config, edition, "ana")
        assert "fresh.md" in [i["path"] for i in approval.manifest["items"]]
        assert "is approved (by ana" in status_line(config, edition)

        monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_API_KEY)  # the service has the key
        assert "is approved (by ana" in status_line(config, edition)
        outcome = jobs.run_send(str(config.path))
    assert outcome.startswith(f"sent edition {edition} through sendgrid"), outcome
    assert not notices(config)  # nothing held


def test_editor_swap_and_backup_files_in_templates_do_not_void_the_approval(
    config: Config,
) -> None:
    edition = current_edition_id(config)
    approve(config, edition, "ana")
    templates = config.templates_dir
    (templates / "partials").mkdir(parents=True)
    (templates / ".edition.mjml.j2.swp").write_bytes(b"vim swap")  # vim has it open
    (templates / "edition.txt.j2~").write_bytes(b"old backup")  # emacs or gedit backup
    (templates / "#edition.txt.j2#").write_bytes(b"emacs autosave")
    (templates / "partials" / ".#item.mjml.j2").write_bytes(b"emacs lock")
    state = approval_state(config, edition, build_edition(config, edition))
    assert state.approved, state.describe()
    (templates / "partials" / "extra.mjml.j2").write_text("{# a new partial #}\n")
    state = approval_state(config, edition, build_edition(config, edition))
    assert state.changes == ("the templates changed (templates/)",)


def test_a_held_edition_that_was_partly_sent_says_how_many_got_it(config: Config) -> None:
    from newsflash.sending.send import send_edition
    from newsflash.transports.factory import make_transport

    edition = current_edition_id(config)

    def stop_after_the_first_batch(done: int, total: int) -> None:
        raise jobs.SendStopped(f"stopped after {done} of {total}")

    config = set_schedule(config.root, jobs={"send": FAR}, require_approval=True, batch_size=2)
    approve(config, edition, "ana")
    with pytest.raises(jobs.SendStopped):
        send_edition(
            config, edition, transport=make_transport(config), progress=stop_after_the_first_batch
        )
    own_template(config.root, "partials/footer.mjml.j2", "{# edited after approval #}\n")
    outcome = jobs.run_send(str(config.path))  # the approval no longer holds: held
    assert outcome.startswith(f"held edition {edition}")
    (notice,) = notices(config)
    text = body(notice)
    assert "nothing was sent" not in text and "nothing was sent" not in outcome
    assert f"2 of {audience_size(config)} recipients were sent it before" in text
