"""Contributors' receipts: after the sample edition goes out through the outbox, each item's
contact gets one receipt (the .eml parsed back): the edition, how many partners, the item's
address in the web archive; nothing about any partner; never twice; none when switched off or
the contact is excluded; none before the send has finished.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from calendar_helpers import body, notices

from newsflash.config import Config, load_config
from newsflash.errors import ConfigError, TransportError
from newsflash.items import load_items
from newsflash.reports.receipts import ReceiptLog, Sent, archive_url, send_once, send_receipts
from newsflash.sending.send import make_transport, send_edition
from newsflash.subscribers import load_subscribers

ED = "2022-02"
CONTACTS = {
    "2022-02/agenda-drives-albatts.md": "projects@example.org",
    "2022-02/wg1-meeting-17-january.md": "wg1-chair@example.org",
    "2022-02/battery-albatts-results.md": "battery-lead@example.org",
}  # the launch item's contact, the secretariat, is excluded in the sample config.toml


def _config(workspace: Path, extra: str = "") -> Config:
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        "require_approval = true", "require_approval = false"
    )
    path.write_text(text + extra, encoding="utf-8")
    return load_config(path)


def _receipts(config: Config) -> list[EmailMessage]:
    return [m for m in notices(config) if "your item went to" in str(m["Subject"])]


@pytest.fixture
def sent(workspace: Path) -> Config:
    config = _config(workspace)
    assert send_edition(config, ED).complete
    return config


def test_each_contact_gets_one_receipt_naming_the_edition_the_partner_count_and_the_archive(
    sent: Config,
) -> None:
    outcome = send_receipts(sent, ED, make_transport(sent), "outbox")
    mails = _receipts(sent)
    assert sorted(outcome.sent) == sorted(CONTACTS.values())
    assert sorted(str(m["To"]) for m in mails) == sorted(CONTACTS.values())
    partners = len(list((sent.outbox_dir / ED).glob("*.eml")))
    assert partners == 10
    items = {i.key: i for i in load_items(sent.submissions_dir, sent.section_keys).items}
    for key, contact in CONTACTS.items():
        mail = next(m for m in mails if m["To"] == contact)
        text = body(mail)
        assert str(mail["Subject"]) == (
            f"ASA Newsflash No. 1 (February 2022): your item went to {partners} partners"
        )
        assert f"'{items[key].title}'" in text and "edition 2022-02" in text
        assert f"to {partners} partners" in text
        url = archive_url(sent, ED, items[key])
        assert url == f"https://newsflash.example.org/2022-02/#{items[key].anchor}"
        assert url in text
        assert "@" not in text  # counts only: no partner's address (nor anyone's)
        for row in load_subscribers(sent.subscribers_path).recipients:
            for value in (row.organisation, row.last_name, row.first_name):
                assert not value or value not in text


def test_a_second_run_a_resumed_send_or_a_restart_sends_no_receipt_twice(sent: Config) -> None:
    transport = make_transport(sent)
    first = send_receipts(sent, ED, transport, "outbox")
    assert send_edition(sent, ED).accepted_now == 0  # a resumed send: nothing new
    again = send_receipts(sent, ED, transport, "outbox")
    restarted = send_receipts(load_config(sent.path), ED, make_transport(sent), "outbox")
    assert len(first.sent) == 3
    assert (again.sent, again.before) == ([], 3) and (restarted.sent, restarted.before) == ([], 3)
    assert len(_receipts(sent)) == 3


def test_receipts_switched_off_in_config_send_none(workspace: Path) -> None:
    config = _config(workspace)
    text = config.path.read_text(encoding="utf-8").replace(
        "enabled = true\nexclude", "enabled = false\nexclude"
    )
    config.path.write_text(text, encoding="utf-8")
    config = load_config(config.path)
    assert send_edition(config, ED).complete
    assert send_receipts(config, ED, make_transport(config), "outbox").sent == []
    assert _receipts(config) == []


def test_an_excluded_contact_gets_none_and_the_others_theirs(workspace: Path) -> None:
    config = _config(workspace)
    path = config.path
    text = path.read_text(encoding="utf-8")
    old = 'exclude = ["secretariat@example.org"]'
    assert old in text
    path.write_text(text.replace(old, 'exclude = ["WG1-Chair@example.org"]'), encoding="utf-8")
    config = load_config(path)
    assert send_edition(config, ED).complete
    send_receipts(config, ED, make_transport(config), "outbox")
    to = sorted(str(m["To"]) for m in _receipts(config))
    expected = [*CONTACTS.values(), "secretariat@example.org"]
    assert to == sorted(c for c in expected if c != "wg1-chair@example.org")


def test_no_receipt_goes_before_the_edition_was_sent(workspace: Path) -> None:
    config = _config(workspace)
    assert send_receipts(config, ED, make_transport(config), "outbox").sent == []  # no ledger
    assert _receipts(config) == []


def test_a_receipt_the_transport_failed_to_send_is_tried_again_by_the_next_run(
    sent: Config,
) -> None:
    store = ReceiptLog(sent)
    key = (ED, "2022-02/newsflash-launch.md", "wg1-chair@example.org", "receipt")

    def refuse() -> None:
        raise TransportError("outbox full")

    failed, retried = Sent(), Sent()
    send_once(store, key, refuse, failed)
    send_once(store, key, lambda: None, retried)
    store.close()
    assert failed.failed == ["wg1-chair@example.org: outbox full"] and failed.sent == []
    assert retried.sent == ["wg1-chair@example.org"]


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        ("receipts", 'exclude = ["not an address"]', "'receipts.exclude[1]'"),
        ("receipts", "enabled = 1", "'receipts.enabled'"),
        ("receipts", "send = true", "unknown key 'receipts.send'"),
        ("links", 'timeout = "10"', "'links.timeout'"),
        ("links", "concurrency = 0", "'links.concurrency'"),
        ("links", "cache_hours = -1", "'links.cache_hours'"),
        ("schedule.report", 'after_send = "soon"', "is not a duration"),
        ("schedule.report", "after_send = 3", "'schedule.report.after_send'"),
    ],
)
def test_a_bad_receipts_links_or_report_setting_is_refused_naming_the_key(
    workspace: Path, table: str, line: str, message: str
) -> None:
    """Each bad line replaces the sample's line of that key in its table (or is added)."""
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    head = f"[{table}]"
    start = text.index(head + " ") if head + " " in text else text.index(head + "\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end == -1 else end
    body = re.sub(rf"^{line.split(' ')[0]} = .*$\n?", "", text[start:end], flags=re.M)
    first = body.index("\n") + 1
    body = body[:first] + line + "\n" + body[first:]
    path.write_text(text[:start] + body + text[end:], encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_newsflash_send_by_hand_sends_the_receipts_once_the_edition_is_out(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from newsflash.cli import main

    config = _config(workspace)
    monkeypatch.chdir(workspace)
    first = CliRunner().invoke(main, ["send", ED, "--yes"])
    assert first.exit_code == 0, first.output
    assert "receipts to the items' contacts: 3 sent" in first.output
    assert sorted(str(m["To"]) for m in _receipts(config)) == sorted(CONTACTS.values())
    again = CliRunner().invoke(main, ["send", ED, "--yes"])
    assert again.exit_code == 0, again.output
    assert len(_receipts(config)) == 3  # nobody hears twice
