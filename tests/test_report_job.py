"""The report job, fired by the real scheduler three days after a send: the reviewers get the
report (terminal tables as text, the HTML page written and named), each item's contact how many
partners clicked their item's links and which link most; each note once, and nothing before
`after_send` has passed. The clock is moved with time-machine, never read from the day.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import time_machine
from calendar_helpers import REVIEWER, at, body, notices, running, set_schedule, soon, wait_for
from conftest import DEFAULT_NOW

from newsflash.config import Config
from newsflash.schedule import jobs
from newsflash.sending.send import send_edition
from newsflash.state.events import EventStore, parse_event
from newsflash.subscribers import recipient_id

ED = "2022-02"
ALBATTS = "https://www.project-albatts.eu/"  # the battery item's 'read more'
BATTERY_LEAD = "battery-lead@example.org"
A, B, C = "anna.keller@example.org", "marc.dubois@example.com", "lena.virtanen@example.org"
HUMAN = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15"


def _event(n: int, kind: str, email: str, at: int, **extra: Any) -> dict[str, Any]:
    return {"email": email, "timestamp": at, "event": kind, "sg_event_id": f"ev-{n}",
            "sg_message_id": f"m{n}.filter", "edition": ED,
            "recipient_id": recipient_id(email), **extra}  # fmt: skip


def _sent_with_clicks(workspace: Path) -> Config:
    """The sample edition sent at DEFAULT_NOW; A clicked the battery link twice, B once."""
    config = set_schedule(workspace, jobs={})
    assert send_edition(config, ED).complete
    t0 = int(DEFAULT_NOW.timestamp()) + 600
    events = [_event(i, "delivered", who, t0) for i, who in enumerate((A, B, C))]
    events += [
        _event(10, "click", A, t0 + 3600, url=ALBATTS, useragent=HUMAN),
        _event(11, "click", A, t0 + 7200, url=ALBATTS, useragent=HUMAN),
        _event(12, "click", B, t0 + 5000, url=ALBATTS, useragent=HUMAN),
    ]
    store = EventStore.in_state(config.state_dir)
    store.record([parse_event(e) for e in events])
    store.close()
    return config


def _by_subject(config: Config, part: str) -> list[EmailMessage]:
    return [m for m in notices(config) if part in str(m["Subject"])]


def test_three_days_after_the_send_the_scheduler_mails_the_report_and_each_contacts_clicks(
    workspace: Path,
) -> None:
    _sent_with_clicks(workspace)
    later = DEFAULT_NOW + dt.timedelta(days=3, minutes=5)
    with time_machine.travel(later, tick=True):
        config = set_schedule(workspace, jobs={"report": {**at(soon(1.5)), "after_send": "3 days"}})
        with running(config):
            wait_for(lambda: len(_by_subject(config, "clicked your item")) == 3, timeout=15)
        again = jobs.run_report(str(config.path))  # fired again, or after a restart
    report = _by_subject(config, ": the report")
    assert [str(m["To"]) for m in report] == [REVIEWER]
    text = body(report[0])
    page = config.state_dir / "reports" / f"{ED}.html"
    assert str(page) in text and page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert "Delivery" in text and ALBATTS in text
    notes = {str(m["To"]): body(m) for m in _by_subject(config, "clicked your item")}
    # the launch item's contact, the secretariat, is excluded in the sample config.toml
    assert set(notes) == {"projects@example.org", "wg1-chair@example.org", BATTERY_LEAD}
    battery = notes[BATTERY_LEAD]
    assert "2 partners have clicked its links (3 clicks in all)" in battery
    assert f"The link clicked most: {ALBATTS}" in battery
    assert "@" not in battery and "Keller" not in battery  # counts only
    assert "0 partners have clicked" in notes["wg1-chair@example.org"]
    assert "most" not in notes["wg1-chair@example.org"]
    assert "0 sent, 1 sent before" in again and "contacts 0 sent, 3 sent before" in again
    assert len(_by_subject(config, ": the report")) == 1


def test_before_after_send_has_passed_the_report_job_sends_nothing(workspace: Path) -> None:
    _sent_with_clicks(workspace)
    set_schedule(workspace, jobs={"report": {"after_send": "3 days"}})
    with time_machine.travel(DEFAULT_NOW + dt.timedelta(days=2, hours=23), tick=True):
        line = jobs.run_report(str(workspace / "config.toml"))
    assert line.startswith("no report due")
    assert _by_subject(set_schedule(workspace, jobs={}), "report") == []


def test_with_nothing_sent_the_report_job_says_so_and_sends_nothing(workspace: Path) -> None:
    config = set_schedule(workspace, jobs={"report": {"after_send": "1 hour"}})
    assert jobs.run_report(str(config.path)).startswith("no report due")
    assert notices(config) == []
