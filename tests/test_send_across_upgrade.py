"""A send an older newsflash started and a newer one finishes.

Upgrading newsflash between two runs of one send must not look like an edit: the files and
settings are the same, only the way their hash is computed changed (`[serve] public_url` joined
the config hash). The secretariat cannot "restore" a hash formula, so the resume must know
the older hash for what it is, and still refuse a real change. These tests freeze a send as an
older newsflash did (its manifest hashed without public_url), then resume it.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_sendgrid import FakeSendGrid
from test_send import AUDIENCE, ED, configure, correct_an_unpinned_item, ledger_of, transport

from newsflash.config import Config, load_config
from newsflash.edition import build_manifest
from newsflash.errors import LedgerError, NotApproved, TransportError
from newsflash.sending.approval import APPROVALS_DIR, approval_state, approve
from newsflash.sending.send import send_edition
from newsflash.state import ledgers


def _start_then_stop(config: Config, sg: FakeSendGrid, sleeps: list[float]) -> Counter[str]:
    """The first batch of five is accepted, the second refused: a send left half done.
    Returns who has it; the fake then forgets them, so what it records next is the rest."""
    sg.inject("slow", seconds=0)
    sg.inject(401)
    with pytest.raises(TransportError):
        send_edition(config, ED, transport=transport(config, sleeps))
    first = Counter(sg.all_recipients())
    sg.reset()
    return first


def _as_an_older_newsflash_froze_it(config: Config) -> str:
    """Rewrite the ledger's frozen manifest with the config hash the older formula gave."""
    edition = ledgers.build_edition(config, ED).edition
    (older_config,) = config.earlier_content_sha256s(ED)
    older = build_manifest(ED, edition.items, edition.manifest["template_sha256"], older_config)
    assert older["content_sha256"] in edition.earlier_manifest_hashes
    assert older["content_sha256"] != edition.manifest_hash
    path = ledgers.ledger_path(config, "sendgrid")
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(
                "UPDATE sends SET manifest_hash = ?, manifest_json = ? WHERE edition_id = ?",
                (older["content_sha256"], json.dumps(older, sort_keys=True), ED),
            )
    finally:
        conn.close()
    return str(older["content_sha256"])


def _retitled(workspace: Path) -> Config:
    """config.toml with the newsletter's tagline changed: a setting that shapes the email."""
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    old_tagline = 'tagline = "News for the partners of the Automotive Skills Alliance"'
    assert old_tagline in text
    path.write_text(
        text.replace(old_tagline, 'tagline = "Changed after the send"'), encoding="utf-8"
    )
    return load_config(path)


def test_a_send_an_older_newsflash_started_is_finished_by_a_newer_one_with_nobody_twice(
    workspace: Path, sg: FakeSendGrid
) -> None:
    sleeps: list[float] = []
    config = configure(workspace, batch_size=5)
    first = _start_then_stop(config, sg, sleeps)
    assert sum(first.values()) == 5
    frozen = _as_an_older_newsflash_froze_it(config)

    send_edition(config, ED, transport=transport(config, sleeps))

    rest = Counter(sg.all_recipients())
    assert first + rest == Counter(AUDIENCE)  # everyone once: nobody lost, nobody twice
    with ledger_of(config) as ledger:
        status = ledger.status(ED)
    assert (status.accepted, status.pending, status.failed) == (len(AUDIENCE), 0, 0)
    assert status.manifest_hash == frozen  # the record of what was frozen stays


def _an_item_corrected(workspace: Path, config: Config) -> Config:
    correct_an_unpinned_item(workspace)
    return config


CHANGED_SINCE: dict[str, Callable[[Path, Config], Config]] = {
    "a setting": lambda workspace, _config: _retitled(workspace),
    "an item": _an_item_corrected,
}


@pytest.mark.parametrize("change", CHANGED_SINCE, ids=list(CHANGED_SINCE))
def test_a_send_an_older_newsflash_started_is_still_refused_when_its_content_changed(
    change: str, workspace: Path, sg: FakeSendGrid
) -> None:
    sleeps: list[float] = []
    config = configure(workspace, batch_size=5)
    _start_then_stop(config, sg, sleeps)
    _as_an_older_newsflash_froze_it(config)
    changed = CHANGED_SINCE[change](workspace, config)

    with pytest.raises(LedgerError, match="changed after sending started"):
        send_edition(changed, ED, transport=transport(changed, sleeps))
    assert sg.all_recipients() == []


def test_the_older_config_hash_leaves_out_only_the_public_url(workspace: Path) -> None:
    """The older formula is the current one without `[serve] public_url`: changing the URL
    changes only the current hash; any other setting changes both."""
    config = load_config(workspace / "config.toml")
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    old_url = 'public_url = "https://newsflash.example.org"'
    assert old_url in text
    path.write_text(
        text.replace(old_url, 'public_url = "https://news.example.net"'), encoding="utf-8"
    )
    moved = load_config(path)
    assert moved.content_sha256(ED) != config.content_sha256(ED)
    assert moved.earlier_content_sha256s(ED) == config.earlier_content_sha256s(ED)


def _approved_by_an_older_newsflash(workspace: Path) -> Config:
    """Approval on, the edition approved, then its record rewritten with the older hash."""
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        "require_approval = false", "require_approval = true"
    )
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    approve(config, ED, by="Ana Silva")
    (older,) = ledgers.build_edition(config, ED).edition.earlier_manifest_hashes
    record = config.state_dir / APPROVALS_DIR / f"{ED}.json"
    doc = json.loads(record.read_text(encoding="utf-8"))
    doc["manifest_hash"] = older
    record.write_text(json.dumps(doc), encoding="utf-8")
    return config


def test_an_approval_an_older_newsflash_recorded_still_holds_when_nothing_changed(
    workspace: Path, sg: FakeSendGrid
) -> None:
    configure(workspace)
    config = _approved_by_an_older_newsflash(workspace)
    assert approval_state(config, ED, ledgers.build_edition(config, ED)).approved
    sleeps: list[float] = []
    send_edition(config, ED, transport=transport(config, sleeps))
    assert Counter(sg.all_recipients()) == Counter(AUDIENCE)


def test_an_approval_an_older_newsflash_recorded_is_void_once_a_setting_changed(
    workspace: Path, sg: FakeSendGrid
) -> None:
    configure(workspace)
    _approved_by_an_older_newsflash(workspace)
    changed = _retitled(workspace)
    state = approval_state(changed, ED, ledgers.build_edition(changed, ED))
    assert state.state == "changed"
    sleeps: list[float] = []
    with pytest.raises(NotApproved):
        send_edition(changed, ED, transport=transport(changed, sleeps))
    assert sg.all_recipients() == []
