"""What the commands tell the secretariat is true (issue 13): each item left out with its own
reason, the approval state before anything else, a finished edition called finished, every
test copy accounted for, times in the newsletter's zone.

Run through the command line in a copy of the sample, as a secretariat runs it, so that the
tests describe what a user sees and survive changes to the modules behind each command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fake_sendgrid import DEFAULT_API_KEY, running_server

from newsflash.cli import main

DRAFT = "drafts/wg2-training-offer.md"
MARCH = "2022-03/drives-final-conference.md"


@pytest.fixture
def cli(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `newsflash ARGS` in-process, in the workspace (stdout and stderr kept apart)."""
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def left_out_lines(output: str) -> dict[str, str]:
    """`left out KEY: REASON` lines of a command's output, by key."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        if line.strip().startswith("left out "):
            key, _, reason = line.strip().removeprefix("left out ").partition(": ")
            found[key] = reason
    return found


def send_the_sample(cli: Callable[..., Result]) -> None:
    assert cli("approve", "2022-02", "--by", "Ana").exit_code == 0
    sent = cli("send", "2022-02", "--yes")
    assert sent.exit_code == 0, sent.output


# -- 1. every left-out item with its real reason ------------------------------------------


def test_a_send_run_again_after_it_finished_gives_each_left_out_item_its_own_reason(
    cli: Callable[..., Result],
) -> None:
    send_the_sample(cli)

    again = cli("send", "2022-02", "--yes")

    assert again.exit_code == 0, again.output
    reasons = left_out_lines(again.stdout)
    assert reasons[DRAFT] == "status is 'draft' (write 'status: ready')"
    assert reasons[MARCH] == "pinned to edition 2022-03"
    assert "started sending" not in again.output


def test_an_item_added_after_the_send_started_is_said_to_wait_for_a_later_edition(
    cli: Callable[..., Result], workspace: Path
) -> None:
    send_the_sample(cli)
    (workspace / "submissions" / "late.md").write_text(
        "---\ntitle: A late item\nsection: wg1\ndate: 2022-02-10\n---\nText.\n", encoding="utf-8"
    )

    again = cli("send", "2022-02", "--yes")

    reasons = left_out_lines(again.stdout)
    assert reasons["late.md"].startswith("not part of this edition when its send started")
    assert reasons["late.md"].endswith("a later edition takes it")
    assert reasons[DRAFT].startswith("status is 'draft'")


# -- 6. `new` and `check` speak alike ------------------------------------------------------


def test_new_with_a_misspelt_section_gets_the_same_did_you_mean_as_check(
    cli: Callable[..., Result], workspace: Path
) -> None:
    made = cli("new", "wg3", "--title", "A meeting")
    (workspace / "submissions" / "typo.md").write_text(
        "---\ntitle: A meeting\nsection: wg3\ndate: 2022-02-10\n---\nText.\n", encoding="utf-8"
    )
    checked = cli("check")

    assert made.exit_code == 1
    said = made.stderr.removeprefix("error: ").strip()
    assert "did you mean 'wg" in said
    assert said in " ".join(checked.stdout.split())
    assert not list((workspace / "submissions").glob("*a-meeting.md"))


@pytest.mark.parametrize(
    ("date", "said"),
    [
        ("2022-02-30", "'2022-02-30' is not a real date: February 2022 has 28 days."),
        ("2022-13-01", "'2022-13-01' is not a real date: there is no month 13."),
        ("17/01/2022", "'17/01/2022' is not a date. Write it as YYYY-MM-DD"),
    ],
)
def test_new_with_a_date_that_cannot_be_names_what_is_wrong_with_it_and_writes_nothing(
    cli: Callable[..., Result], workspace: Path, date: str, said: str
) -> None:
    before = sorted((workspace / "submissions").rglob("*"))

    made = cli("new", "wg1", "--title", "A meeting", "--date", date)

    assert made.exit_code == 1
    assert made.stderr.startswith(f"error: --date: {said}")
    assert made.stderr.count("\n") == 1
    assert sorted((workspace / "submissions").rglob("*")) == before


def test_check_names_curly_quotes_around_a_value_and_reads_the_value_inside(
    cli: Callable[..., Result], workspace: Path
) -> None:
    (workspace / "submissions" / "curly.md").write_text(
        "---\ntitle: WG1 meets\nsection: “wg1”\ndate: 2022-02-10\n---\nText.\n",
        encoding="utf-8",
    )

    checked = cli("check")

    assert checked.exit_code == 0, checked.output
    out = " ".join(checked.stdout.split())
    assert "curly.md:3: section: the value “wg1” is in curly quotes (“ ”)" in out
    assert "unknown section" not in out


# -- 2. the approval state first ------------------------------------------------------------


def test_a_dry_run_of_an_unapproved_edition_says_so_before_the_counts(
    cli: Callable[..., Result],
) -> None:
    dry = cli("send", "2022-02", "--dry-run")

    assert dry.exit_code == 0, dry.output
    lines = dry.stdout.splitlines()
    assert lines[0].startswith("approval edition 2022-02 is not approved.")
    assert "newsflash approve 2022-02" in lines[0]
    assert lines[1] == "A send now would be held: nothing would be sent."
    counts = next(n for n, line in enumerate(lines) if "to send now" in line)
    assert counts > 1


def test_a_dry_run_of_an_approved_edition_says_it_is_approved(
    cli: Callable[..., Result],
) -> None:
    assert cli("approve", "2022-02", "--by", "Ana").exit_code == 0

    dry = cli("send", "2022-02", "--dry-run")

    assert dry.stdout.startswith("approval edition 2022-02 is approved (by Ana")
    assert "would be held" not in dry.stdout


def test_a_send_of_an_unapproved_edition_is_refused_before_it_counts_anyone_to_send(
    cli: Callable[..., Result], workspace: Path
) -> None:
    sent = cli("send", "2022-02", "--yes")

    assert sent.exit_code == 1
    assert "to send now" not in sent.stdout
    assert sent.stderr.startswith("error: held, nothing sent: edition 2022-02 is not approved")
    assert not (workspace / "outbox" / "2022-02").exists()


# -- 3. a finished edition is called finished ------------------------------------------------


def test_a_send_after_an_item_was_edited_says_the_finished_edition_is_complete(
    cli: Callable[..., Result], workspace: Path
) -> None:
    """Regression (issue 13): it advised restoring the files "to finish the send" and
    pointed at `status` for "who still waits", though nobody did."""
    send_the_sample(cli)
    item = workspace / "submissions" / "2022-02" / "newsflash-launch.md"
    item.write_text(item.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")

    again = cli("send", "2022-02", "--yes")

    said = " ".join(again.stderr.split())
    assert "edition 2022-02 is complete: 10 recipient(s) have it and nobody waits" in said
    assert "item edited: 2022-02/newsflash-launch.md" in said
    assert "Restore" not in said and "still waits" not in said
    assert len(list((workspace / "outbox" / "2022-02").glob("*.eml"))) == 10


# -- 4. several test copies, each accounted for ----------------------------------------------


def test_several_to_addresses_each_get_a_test_copy_and_the_output_names_each_file(
    cli: Callable[..., Result], workspace: Path
) -> None:
    """Regression (issue 13): `--to a --to b` sent only to b."""
    sent = cli(
        "send",
        "2022-02",
        "--to",
        "ana@example.org",
        "--to",
        "ben@example.org",
        "--to",
        "ANA@example.org",
    )

    assert sent.exit_code == 0, sent.output
    files = sorted((workspace / "outbox" / "tests" / "2022-02").glob("*.eml"))
    assert [f.name.rsplit("-", 1)[-1] for f in files] == [
        "ana@example.org.eml",
        "ben@example.org.eml",
    ]
    out = " ".join(sent.stdout.split())
    for address, path in zip(("ana@example.org", "ben@example.org"), files, strict=True):
        assert f"test copy sent to {address}: written to {path}" in out
    assert not (workspace / "outbox" / "2022-02").exists()  # no partner was sent anything


def test_test_copies_through_sendgrid_name_the_message_id_of_each(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server() as sg:
        monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", sg.url)

        sent = cli("send", "2022-02", "--to", "ana@example.org", "--to", "ben@example.org")

        requests = sg.delivered_requests
    assert sent.exit_code == 0, sent.output
    assert [r.to_addresses for r in requests] == [["ana@example.org"], ["ben@example.org"]]
    out = " ".join(sent.stdout.split())
    for request in requests:
        assert request.message_id
        address = request.to_addresses[0]
        assert (
            f"test copy sent to {address}: accepted by SendGrid (message id {request.message_id})"
            in out
        )


def test_a_bad_address_among_several_is_named_after_the_copies_already_sent(
    cli: Callable[..., Result], workspace: Path
) -> None:
    sent = cli("send", "2022-02", "--to", "ana@example.org", "--to", "ben.example.org")

    assert sent.exit_code == 1
    assert "test copy sent to ana@example.org" in sent.stdout
    assert sent.stderr.startswith("error: --to 'ben.example.org' is not an email address")
    assert len(list((workspace / "outbox" / "tests" / "2022-02").glob("*.eml"))) == 1


# -- 5. status: the newsletter's clock, the approval once ------------------------------------


def test_status_shows_times_in_the_newsletters_zone_and_the_approval_once(
    cli: Callable[..., Result],
) -> None:
    """The clock (conftest) stands at 14:00 in Brussels, 12:00 UTC, in summer time."""
    send_the_sample(cli)

    shown = cli("status", "2022-02")

    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "+00:00" not in out
    assert out.count("2026-06-17 14:00:") == 3  # started, finished, approved
    assert " CEST" in out
    assert out.count("Ana") == 1
    assert "approval edition 2022-02 is approved (by Ana at 2026-06-17 14:00:" in out
    assert "of the edition sent" in out


def test_status_of_an_edition_approved_but_not_sent_names_the_approval_once(
    cli: Callable[..., Result],
) -> None:
    assert cli("approve", "2022-02", "--by", "Ana").exit_code == 0

    out = cli("status", "2022-02").stdout

    assert out.count("Ana") == 1 and "2026-06-17 14:00:" in out and "+00:00" not in out
    assert "has not been sent through any transport" in out
