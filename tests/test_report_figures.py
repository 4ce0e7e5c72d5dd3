"""The report's arithmetic on rows: each scanner rule, the delivery precedence, and hostile
rows (unknown recipients, missing timestamps, odd fields) that must neither crash nor count."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsflash.cli import main
from newsflash.config import load_config
from newsflash.reports.figures import (
    SWEEP_SECONDS,
    EditionInput,
    EventRow,
    Sent,
    compute,
    scanner_rule,
)
from newsflash.sending.approval import approve
from newsflash.sending.send import send_edition

T0 = 1_780_000_000
LINKS = {"https://a.example/": "a.md", "https://b.example/": "b.md", "https://c.example/": "c.md"}
PEOPLE = [Sent("r1", "one@example.org", "Org"), Sent("r2", "two@example.com", "")]


def report(*events: EventRow, started: int | None = T0 - 600):
    return compute(
        EditionInput(
            "2022-02", started, PEOPLE, events, LINKS, {"a.md": "A", "b.md": "B", "c.md": "C"}
        )
    )


def click(rid: str, at: int | None, url: str = "https://a.example/", agent: str = "Mozilla/5.0"):
    return EventRow("click", rid, at, url, agent)


def delivered(rid: str, at: int | None = T0) -> EventRow:
    return EventRow("delivered", rid, at)


@pytest.mark.parametrize(
    "agent",
    [
        "Mimecast URL Protect",
        "Barracuda Sentinel",
        "python-requests/2.31",
        "curl/8.1",
        "Mozilla/5.0 HeadlessChrome/120",
        "Proofpoint URL Defense",
    ],
)
def test_a_click_from_a_known_scanner_user_agent_is_counted_apart(agent: str) -> None:
    r = report(delivered("r1"), click("r1", T0 + 3600, agent=agent))
    assert r.scanners.by_rule == {"user agent": 1}
    assert r.engagement.unique_clicks == 0 and r.engagement.clicks == 0


def test_a_click_before_the_recipients_delivery_is_a_scanners() -> None:
    r = report(delivered("r1", T0 + 100), click("r1", T0 + 50))
    assert r.scanners.by_rule == {"before delivery": 1} and r.engagement.clicks == 0


def test_a_click_before_the_send_started_is_a_scanners_even_without_a_delivery() -> None:
    assert report(click("r1", T0 - 3600)).scanners.by_rule == {"before delivery": 1}


def test_three_links_clicked_within_seconds_of_delivery_are_a_sweep_later_clicks_count() -> None:
    urls = list(LINKS)
    sweep = [click("r1", T0 + k, u) for k, u in enumerate(urls)]
    later = click("r1", T0 + SWEEP_SECONDS + 600, urls[0])
    r = report(delivered("r1"), *sweep, later)
    assert r.scanners.by_rule == {"link sweep": 3} and r.scanners.recipients == 1
    assert r.engagement.clicks == 1 and r.engagement.unique_clicks == 1


def test_one_fast_click_by_a_reader_is_not_a_sweep() -> None:
    r = report(delivered("r1"), click("r1", T0 + 5), click("r1", T0 + 8))  # same link twice
    assert r.scanners.clicks == 0 and r.engagement.clicks == 2


def test_scanner_rule_without_any_clue_is_a_partner() -> None:
    assert scanner_rule(click("r1", T0 + 10), T0, T0 - 60, swept=False) is None
    assert scanner_rule(click("r1", None, agent=""), None, None, swept=False) is None


def test_a_late_bounce_after_delivery_counts_as_bounced_and_the_rows_add_up_to_sent() -> None:
    r = report(
        delivered("r1"), EventRow("bounce", "r1", T0 + 60, bounce_type="bounce", status="4.2.2")
    )
    d = r.delivery
    assert (d.bounced_soft, d.delivered, d.not_yet_known) == (1, 0, 1)
    assert d.delivered + d.deferred + d.bounced + d.dropped + d.not_yet_known == d.sent


def test_hostile_rows_neither_crash_nor_count() -> None:
    r = report(
        delivered("r1", None),  # no timestamp
        click("nobody", T0),  # a recipient this edition never had
        EventRow("click", "r2", None, None, None),  # no url, no time, no agent
        EventRow("bounce", "r2", None, bounce_type=None, status=None),
        EventRow("open", "r2", T0, machine_open=True),
    )
    assert r.unmatched_events == 1
    assert r.delivery.delivered == 1 and r.delivery.bounced_hard == 1
    assert r.engagement.unique_clicks == 1 and r.engagement.hours == (0,) * 72
    assert r.engagement.machine_opens == 1
    assert r.item_clicks("missing.md").clicks == 0


def test_no_events_says_so_and_rates_are_not_a_number() -> None:
    r = report()
    assert r.trust.spam_rate is None and r.trust.spam_level == "n/a"
    assert any("no events recorded" in n for n in r.notes)


def test_the_spam_level_warns_from_a_tenth_of_a_percent_and_is_over_gmails_limit_at_three() -> None:
    people = [Sent(f"r{i}", f"p{i}@example.org") for i in range(1000)]

    def level(spam: int) -> str:
        events = [delivered(p.recipient_id) for p in people]
        events += [EventRow("spamreport", f"r{i}", T0) for i in range(spam)]
        return compute(EditionInput("2022-02", T0, people, events)).trust.spam_level

    assert [level(0), level(1), level(2), level(3)] == ["ok", "warning", "warning", "over limit"]


def test_a_receipt_asks_one_items_clicks_in_one_call() -> None:
    r = report(
        delivered("r1"),
        delivered("r2"),
        click("r1", T0 + 3600),
        click("r2", T0 + 4000, "https://b.example/"),
    )
    a = r.item_clicks("a.md")
    assert (a.clicks, a.clickers, a.top_link) == (1, 1, "https://a.example/")


@pytest.mark.parametrize("target", ["file", "folder"])
def test_an_output_path_of_the_wrong_kind_is_one_clear_line(workspace: Path, target: str) -> None:
    config = load_config(workspace / "config.toml")
    approve(config, "2022-02", "ana")
    assert send_edition(config, "2022-02").complete
    (workspace / "taken").mkdir()
    (workspace / "plain").write_text("x")
    args = (
        ["--html", str(workspace / "taken")]
        if target == "folder"
        else ["--csv", str(workspace / "plain")]
    )
    result = CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), "report", *args])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert ("is a directory" in result.output) if target == "folder" else ("plain" in result.output)
