"""`newsflash report` end to end: an edition sent through the fake SendGrid, SendGrid's signed
events posted to the real webhook (newsflash serve's app on 127.0.0.1), then every figure
asserted exactly in the terminal, in the CSV files parsed back and in the HTML page as
Chromium shows it (screenshot kept in tests/artifacts/)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ARTIFACTS, DEFAULT_NOW
from fake_sendgrid import DEFAULT_API_KEY, running_server
from serve_helpers import SECRET, Clock, SendGridKeys, running
from test_send import AUDIENCE

from newsflash.cli import main
from newsflash.config import Config, load_config
from newsflash.reports.tables import percent
from newsflash.sending.approval import approve
from newsflash.sending.send import send_edition
from newsflash.serve.app import create_app
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscribers import recipient_id

ED = "2022-02"
A, B, C, D, E, F, G, H, I, J = AUDIENCE  # noqa: E741 (the sample audience, in file order)
ALBATTS = "https://www.project-albatts.eu/"  # the battery item's 'read more'
AGENDA = "https://example.org/agenda"  # added to the agenda item's text below
REGISTER = "https://example.org/register"  # added to the launch item's text below
ELSEWHERE = "https://example.org/not-in-any-item"
BATTERY, AGENDA_ITEM = "2022-02/battery-albatts-results.md", "2022-02/agenda-drives-albatts.md"
LAUNCH, WG1 = "2022-02/newsflash-launch.md", "2022-02/wg1-meeting-17-january.md"
T0 = int(DEFAULT_NOW.timestamp()) + 600  # deliveries: ten minutes after the send started


def _add_link(ws: Path, key: str, markdown: str) -> None:
    path = ws / "submissions" / key
    path.write_text(path.read_text(encoding="utf-8") + f"\n{markdown}\n", encoding="utf-8")


@pytest.fixture
def sent(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Config]:
    """The sample edition, with three item links, sent to ten partners through SendGrid."""
    cfg = workspace / "config.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            "require_approval = true", "require_approval = false"
        ),
        encoding="utf-8",
    )
    _add_link(workspace, AGENDA_ITEM, f"See [the agenda]({AGENDA}).")
    _add_link(workspace, LAUNCH, f"[Register as a partner]({REGISTER}).")
    with running_server() as server:
        monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", server.url)
        config = load_config(cfg)
        approve(config, ED, "ana")
        assert send_edition(config, ED).complete
    monkeypatch.delenv("SENDGRID_API_KEY")
    yield config


def ev(n: int, kind: str, email: str, at: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": at,
        "event": kind,
        "sg_event_id": f"ev-{n:04d}",
        "sg_message_id": f"msg{n}.filter0001",
        "edition": ED,
        "recipient_id": recipient_id(email),
        **extra,
    }


def story() -> list[dict[str, Any]]:
    """What SendGrid reports about the ten, written so every figure is a different number."""
    human = {"useragent": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15"}
    events = [
        *(ev(i, "delivered", who, T0) for i, who in enumerate((A, B, C), 1)),
        ev(4, "deferred", D, T0 - 300),
        ev(5, "delivered", D, T0),  # deferred, then delivered: delivered
        ev(6, "deferred", E, T0),  # deferred only
        ev(7, "delivered", F, T0),
        ev(8, "bounce", F, T0 + 900, type="bounce", status="4.2.2"),  # late soft bounce
        ev(9, "bounce", G, T0, type="bounce", status="5.1.1", reason="no such user"),
        ev(10, "bounce", H, T0, type="blocked", status="5.7.1"),
        ev(11, "dropped", I, T0, reason="Invalid SMTPAPI header"),
        # J: nothing yet
        ev(12, "spamreport", C, T0 + 7200),
        ev(13, "group_unsubscribe", A, T0 + 7300, asm_group_id=7),
        ev(14, "unsubscribe", B, T0 + 7400),
        ev(15, "open", A, T0 + 60),
        ev(16, "open", A, T0 + 4000),
        ev(17, "open", B, T0 + 120),
        ev(18, "open", C, T0 + 130),
        ev(19, "open", D, T0 + 1, sg_machine_open=True),
        ev(20, "click", A, T0 + 3600, url=ALBATTS, **human),
        ev(21, "click", A, T0 + 7200, url=ALBATTS, **human),
        ev(22, "click", A, T0 + 3660, url=ELSEWHERE, **human),
        ev(23, "click", B, T0 + 30 * 3600, url=AGENDA, **human),
        ev(24, "click", C, T0 + 5000, url=ALBATTS, useragent="Mimecast URL Protect/1.0"),
        *(
            ev(25 + k, "click", D, T0 + 5 + k, url=u, **human)
            for k, u in enumerate((ALBATTS, AGENDA, REGISTER))
        ),
        ev(28, "click", D, T0 + 80 * 3600, url=REGISTER, **human),  # after the first 72 hours
        ev(29, "click", E, T0 - 3600, url=AGENDA, **human),  # before the send started
        ev(30, "delivered", "stranger@example.net", T0),  # not in this edition's ledger
    ]
    return events


def post(server: Any, keys: SendGridKeys, clock: Clock, events: list[dict[str, Any]]) -> None:
    body = json.dumps(events).encode()
    stamp = int(clock.now.timestamp())
    answer = server.request("POST", "/webhooks/sendgrid", body, keys.headers(body, stamp))
    assert answer.status == 200, answer.text


@pytest.fixture
def reported(sent: Config, workspace: Path) -> Config:
    """The story posted through the real webhook in two batches, the first one twice (as
    SendGrid redelivers), plus one one-click unsubscribe recorded by newsflash serve's store."""
    keys, clock = SendGridKeys(), Clock(DEFAULT_NOW.astimezone().replace(microsecond=0))
    clock.advance(days=4)
    env = {"NEWSFLASH_SECRET": SECRET, "SENDGRID_WEBHOOK_PUBLIC_KEY": keys.public_b64}
    events = story()
    with running(create_app(sent, environ=env, clock=clock)) as server:
        post(server, keys, clock, events[:15])
        post(server, keys, clock, events[:15])
        post(server, keys, clock, events[15:])
    store = SuppressionStore.in_state(workspace / "state")
    store.add(D, "unsubscribe", "one-click", detail=f"edition={ED}")
    store.add(C, "unsubscribe", "one-click", detail="edition=2022-01")  # another edition's link
    store.close()
    return sent


# Every figure, by table, as the report must show it (rates as fractions; None = n/a).
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "delivery": [
        ("sent (accepted)", 10, 1.0),
        ("delivered", 4, 0.4),
        ("deferred (still trying)", 1, 0.1),
        ("bounced: hard", 1, 0.1),
        ("bounced: soft", 1, 0.1),
        ("bounced: blocked", 1, 0.1),
        ("dropped", 1, 0.1),
        ("not yet known", 1, 0.1),
    ],
    "trust": [(ED, 1, 0.25, "over limit", 3, 0.75)],
    "engagement": [
        ("unique opens (a lower bound; Apple Mail Privacy Protection inflates it)", 4, 1.0),
        ("of which only machine opens (sg_machine_open)", 1, None),
        ("unique clicks (partners who clicked)", 3, 0.75),
        ("clicks (all, by partners)", 5, None),
        ("scanner clicks (counted apart, not partners)", 5, None),
    ],
    "items": [
        (BATTERY, "Battery subgroup presents the first ALBATTS results", 1, 2, ALBATTS),
        (AGENDA_ITEM, "The agenda ahead: DRIVES concludes, ALBATTS delivers", 1, 1, AGENDA),
        (LAUNCH, "The ASA launches the partners’ Newsflash", 1, 1, REGISTER),
        (WG1, "Working Group 1 holds its first meeting", 0, 0, ""),
        ("(not an item's link)", "(not an item's link)", 1, 1, ELSEWHERE),
    ],
    "links": [
        (ALBATTS, BATTERY, 1, 2),
        (AGENDA, AGENDA_ITEM, 1, 1),
        (ELSEWHERE, "(not an item's link)", 1, 1),
        (REGISTER, LAUNCH, 1, 1),
    ],
    "organisations": [
        ("Autoteile Nord GmbH", 1, 1, 3, 1.0),
        ("Institut Mobilité", 1, 1, 1, 1.0),
        ("Skellefteå Battery Lab", 1, 1, 1, 1.0),
    ],
    "domains": [("example.org", 5, 2, 4, 0.4), ("example.com", 5, 1, 1, 0.2)],
    "hours": [(h, {1: 2, 2: 1, 30: 1}.get(h, 0)) for h in range(72)],
    "scanners": [("before delivery", 1), ("link sweep", 3), ("user agent", 1)],
}
ZERO_ORGANISATIONS = 7  # the other seven partners: one organisation each, nobody clicked


def as_text(value: Any, rate: bool) -> str:
    return percent(value) if rate else ("" if value is None else str(value))


RATES = {"delivery": {2}, "trust": {2, 5}, "engagement": {2}, "organisations": {4}, "domains": {4}}


def expected_text(name: str) -> list[list[str]]:
    rates = RATES.get(name, set())
    return [[as_text(v, i in rates) for i, v in enumerate(row)] for row in EXPECTED[name]]


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def test_every_figure_of_a_sent_edition_is_exact_in_the_terminal_the_csv_and_the_html_page(
    reported: Config, workspace: Path, browser: Any
) -> None:
    out, page_path = workspace / "report-csv", workspace / "report.html"
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(workspace / "config.toml"),
            "report",
            "--csv",
            str(out),
            "--html",
            str(page_path),
        ],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output

    # CSV, parsed back: the expected rows, exactly (organisations: the clickers first).
    for name, rows in EXPECTED.items():
        with (out / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            parsed = list(csv.reader(f))[1:]
        want = [[csv_value(v) for v in row] for row in rows]
        if name == "organisations":
            assert parsed[:3] == want and len(parsed) == 3 + ZERO_ORGANISATIONS
            assert all(r[1:] == ["1", "0", "0", "0.000000"] for r in parsed[3:])
        else:
            assert parsed == want, name

    # Terminal: each table's rows as rich drew them.
    terminal = terminal_rows(result.output)
    for name in ("delivery", "trust", "engagement", "items", "links", "domains", "scanners"):
        for row in expected_text(name):
            assert row in terminal, (name, row)
    assert (
        "note: 1 event(s) name a recipient this edition's ledger did not send to" in result.output
    )

    # HTML in Chromium: every table read from the rendered page; a screenshot kept.
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    try:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())
        for name in EXPECTED:
            shown = page.eval_on_selector_all(
                f'table[data-table="{name}"] tbody tr',
                "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))",
            )
            want = expected_text(name)
            assert shown[: len(want)] == want, name
        assert page.locator("svg").count() == 3
        page.screenshot(path=str(ARTIFACTS / "report-2022-02.png"), full_page=True)
    finally:
        page.close()
    assert requests == [page_path.as_uri()]  # nothing fetched but the page itself


def terminal_rows(output: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def test_an_outbox_rehearsal_with_no_events_says_so_and_counts_only_the_send(
    workspace: Path,
) -> None:
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")
    assert send_edition(config, ED).complete
    result = CliRunner().invoke(
        main, ["--config", str(workspace / "config.toml"), "report"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    rows = terminal_rows(result.output)
    assert ["sent (accepted)", "10", "100.00%"] in rows
    assert ["not yet known", "10", "100.00%"] in rows
    assert "note: no events recorded for this edition" in result.output


def test_a_report_before_any_send_is_one_clear_line_naming_what_to_do(workspace: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), "report"])
    assert result.exit_code == 1
    assert "nothing has been sent that way yet; send an edition first" in result.output
    assert "Traceback" not in result.output


def test_an_edition_never_sent_is_refused_naming_the_editions_that_were(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")
    assert send_edition(config, ED).complete
    result = CliRunner().invoke(
        main, ["--config", str(workspace / "config.toml"), "report", "2021-12"]
    )
    assert result.exit_code == 1
    assert re.search(
        r"edition 2021-12 has not reached anyone .* sent editions: 2022-02", result.output
    )
