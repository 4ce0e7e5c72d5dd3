"""Without a SendGrid key the edition goes to outbox/<edition>/ as .eml files, parsed back here."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner
from conftest import token

from newsflash.cli import main
from newsflash.config import load_config
from newsflash.message import message_from
from newsflash.personalise import Person
from newsflash.sending.approval import approve
from newsflash.sending.send import send_edition, send_test
from newsflash.state import ledgers
from newsflash.subscribers import recipient_id
from newsflash.transports.factory import make_transport
from newsflash.transports.outbox import OutboxTransport

ED = "2022-02"
AUDIENCE = {
    "anna.keller@example.org": "Anna",
    "marc.dubois@example.com": "Marc",
    "lena.virtanen@example.org": "Lena",
    "jonas.berg@example.org": "Jonas",
    "sofia.rossi@example.com": "Sofia",
    "eva.horvath@example.com": "Eva",
    "tomas.novak@example.org": "Tomáš",
    "maria.garcia@example.com": "María",
    "claire.martin@example.com": "Claire",
    "ioana.popescu@example.org": "Ioana",
}


def parse(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> list[tuple[str, str]]:
    return [(p.get_content_type(), p.get_content()) for p in msg.iter_parts()]  # type: ignore[attr-defined]


def test_without_a_key_the_edition_goes_to_the_outbox_one_eml_per_audience_member(
    workspace: Path,
) -> None:
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")  # the sample requires approval; the send itself checks it
    report = send_edition(config, ED)
    assert report.transport == "outbox" and report.complete and report.accepted_now == 10
    files = sorted((workspace / "outbox" / ED).glob("*.eml"))
    assert len(files) == 10
    addresses = {str(parse(f)["To"].addresses[0].addr_spec) for f in files}
    assert addresses == set(AUDIENCE)
    for f in files:
        to = parse(f)["To"].addresses[0].addr_spec
        assert f.name == f"{recipient_id(to)}-{to}.eml"
    assert ledgers.ledger_path(config, "outbox").exists()
    assert not ledgers.ledger_path(config, "sendgrid").exists()
    assert not list((workspace / "outbox").rglob(".*.tmp"))  # written atomically


def test_each_eml_has_both_parts_in_order_the_headers_and_its_personalisation(
    workspace: Path,
) -> None:
    config = load_config(workspace / "config.toml")
    build = ledgers.build_edition(config, ED)
    approve(config, ED, "ana", build)
    send_edition(config, ED, build=build)
    message_ids = set()
    for address, first_name in AUDIENCE.items():
        rid = recipient_id(address)
        msg = parse(workspace / "outbox" / ED / f"{rid}-{address}.eml")
        assert msg.get_content_type() == "multipart/alternative"
        (plain_type, plain), (html_type, html) = parts(msg)
        assert (plain_type, html_type) == ("text/plain", "text/html")
        assert f"Dear {first_name}," in plain
        assert f"Dear {first_name}," in html
        for tag in ("-first_name-", "-first_name_html-", "-recipient_id-", "-unsubscribe_token-"):
            assert tag not in plain and tag not in html
        link = f"https://newsflash.example.org/unsubscribe/{token(rid)}"
        assert link in plain and link in html
        assert msg["Subject"] == build.email.subject
        assert msg["From"].addresses[0].addr_spec == "newsflash@example.org"
        assert msg["Reply-To"] == "secretariat@example.org"
        assert msg["List-Unsubscribe"].strip() == (  # folded: value starts on line 2
            f"<https://newsflash.example.org/unsubscribe/{token(rid)}>, "
            f"<mailto:unsubscribe@example.org?subject=unsubscribe-{token(rid)}>"
        )
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["X-Newsflash-Recipient"] == rid
        message_ids.add(msg["Message-ID"])
    assert len(message_ids) == len(AUDIENCE)  # one Message-ID per recipient


def test_a_rerun_of_the_outbox_writes_nothing_new(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")
    send_edition(config, ED)
    folder = workspace / "outbox" / ED
    stamps = {f: f.stat().st_mtime_ns for f in folder.iterdir()}
    again = send_edition(config, ED)
    assert again.accepted_now == 0
    assert {f: f.stat().st_mtime_ns for f in folder.iterdir()} == stamps


def test_a_test_copy_goes_to_outbox_tests_and_counts_for_no_one(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    send_test(config, ED, "me@example.org")
    [copy] = (workspace / "outbox" / "tests" / ED).glob("*.eml")
    msg = parse(copy)
    assert msg["Subject"].startswith("[TEST] ")
    assert "Dear partner," in parts(msg)[0][1]  # not on the list: the fallback greeting
    assert not (workspace / "outbox" / ED).exists()
    assert not ledgers.ledger_path(config, "outbox").exists()


def test_a_notice_is_written_to_outbox_notices(tmp_path: Path) -> None:
    t = OutboxTransport(tmp_path / "outbox", from_email="newsflash@example.org")
    t.send_notice(["a@example.org", "b@example.org"], "Proof of 2022-02: please review", "Hi")
    [notice] = (tmp_path / "outbox" / "notices").glob("*-proof-of-2022-02-please-review.eml")
    msg = parse(notice)
    assert msg["To"] == "a@example.org, b@example.org"
    assert msg.get_content().strip() == "Hi"  # type: ignore[attr-defined]


def test_outbox_file_names_are_safe_for_odd_addresses(workspace: Path, tmp_path: Path) -> None:
    config = load_config(workspace / "config.toml")
    message = message_from(config, ledgers.build_edition(config, ED).email)
    t = OutboxTransport(tmp_path)
    odd = Person("abc", "o'brien/../x@example.org", "Seán")
    assert t.send([odd], message).outcome == "accepted"
    [written] = (tmp_path / ED).iterdir()
    assert written.name == "abc-o_brien_.._x@example.org.eml"


def test_cli_send_of_an_unapproved_edition_is_held_and_sends_nothing(workspace: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), "send", ED])
    assert result.exit_code == 1
    assert "held, nothing sent" in result.output and f"newsflash approve {ED}" in result.output
    assert not (workspace / "outbox" / ED).exists()


def test_cli_send_defaults_to_the_outbox_and_says_so(workspace: Path) -> None:
    cfg = ["--config", str(workspace / "config.toml")]
    assert CliRunner().invoke(main, [*cfg, "approve", ED, "--by", "tester"]).exit_code == 0
    result = CliRunner().invoke(main, [*cfg, "send", ED])
    assert result.exit_code == 0, result.output
    assert "through outbox" in result.output
    assert len(list((workspace / "outbox" / ED).glob("*.eml"))) == 10
    assert make_transport(load_config(workspace / "config.toml")).name == "outbox"
