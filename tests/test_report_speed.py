"""The figures made faster for a big edition (issue 11: `newsflash report` on 100k recipients
and 500k events under 2 s) must be exactly the figures they replaced: random editions, with
recipients the events do not know and events the ledger does not know, empty and repeated
organisations, addresses without a domain, clicks without a time, a link or a user agent,
sweeps and scanners, are computed by figures.compute and by the code it replaced, kept
verbatim in tests/report_before_speedup.py, with and without a rollup.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import report_before_speedup

from newsflash.reports.figures import NO_ORGANISATION, compute
from newsflash.reports.rows import NOT_LISTED, EditionInput, EventRow, Outcome, Sent

T0 = 1_780_000_000
LINKS = ["https://a.example/", "https://b.example/", "https://c.example/", "https://d.example/"]
KINDS = ["delivered", "deferred", "bounce", "dropped", "open", "click", "click", "spamreport",
         "unsubscribe", "group_unsubscribe"]  # fmt: skip
ORGS = ["ACME", "Bee Ltd", "", NO_ORGANISATION, NOT_LISTED]
DOMAINS = ["a.example", "b.example", "", "x@y.example"]


def _recipients(rng: random.Random) -> list[Sent]:
    return [
        Sent(f"r{i}", f"p{i}@{rng.choice(DOMAINS)}" if rng.random() < 0.9 else f"p{i}",
             rng.choice(ORGS))
        for i in range(rng.randrange(0, 25))
    ]  # fmt: skip


def _someone(rng: random.Random, sent: list[Sent]) -> str:
    known = [r.recipient_id for r in sent]
    return rng.choice([*known, *known, "stranger1", "stranger2"])


def _time(rng: random.Random, near: int | None) -> int | None:
    """Mostly within a minute of `near` (a delivery: sweeps), else anywhere, or missing."""
    if rng.random() < 0.1:
        return None
    if near is not None and rng.random() < 0.5:
        return near + rng.randrange(-5, 70)
    return T0 + rng.randrange(-600, 80 * 3600)


def _outcomes(rng: random.Random, sent: list[Sent]) -> dict[str, Outcome]:
    rids = {_someone(rng, sent) for _ in range(rng.randrange(0, 30))}
    return {
        rid: Outcome(rid, rng.randrange(1, 6), rng.getrandbits(9), _time(rng, T0 + 60),
                     rng.choice(["bounce", "blocked", "Blocked", None]),
                     rng.choice(["5.1.1", "4.2.2", "4", None]))
        for rid in sorted(rids)
    }  # fmt: skip


def _click(rng: random.Random, rid: str, delivered: int | None) -> EventRow:
    agent = rng.choice(["Mozilla/5.0", "Mozilla/5.0", "Mimecast URL Protect", "curl/8", "", None])
    return EventRow("click", rid, _time(rng, delivered), rng.choice([*LINKS, None]), agent)


def _event(rng: random.Random, rid: str, delivered: int | None) -> EventRow:
    kind = rng.choice(KINDS)
    if kind == "click":
        return _click(rng, rid, delivered)
    return EventRow(kind, rid, _time(rng, delivered), None, None,
                    rng.choice(["bounce", "blocked", None]), rng.choice(["5.1.1", "4.2.2", None]),
                    rng.random() < 0.3)  # fmt: skip


def _edition(seed: int, rolled_up: bool) -> EditionInput:
    rng = random.Random(seed)
    sent = _recipients(rng)
    outcomes = _outcomes(rng, sent)
    rows: list[EventRow] = []
    for _ in range(rng.randrange(0, 60)):
        rid = _someone(rng, sent)
        delivered = outcomes[rid].delivered_at if rid in outcomes else None
        rows.append(_click(rng, rid, delivered) if rolled_up else _event(rng, rid, delivered))
    links = dict(zip(LINKS[: rng.randrange(0, 4)], ["a.md", "b.md", "a.md"], strict=False))
    return EditionInput(
        edition_id="2022-02",
        started_at=rng.choice([T0, T0 + 120, None]),
        recipients=sent,
        events=rows,
        link_items=links,
        item_titles={"a.md": "A", "b.md": "B", "c.md": "C"},
        one_click_unsubscribes=frozenset(rng.sample(["r0", "r1", "r7", "stranger1"], 2)),
        notes=("a note",) if rng.random() < 0.2 else (),
        outcomes=list(outcomes.values()) if rolled_up else None,
    )


@pytest.mark.parametrize("rolled_up", [True, False], ids=["rolled up", "event by event"])
def test_random_editions_give_the_figures_the_code_before_the_speedup_gave(
    rolled_up: bool,
) -> None:
    differ = []
    for seed in range(400):
        data = _edition(seed, rolled_up)
        if compute(data) != report_before_speedup.compute(data):
            differ.append(seed)
    assert differ == []


def test_the_random_editions_reach_every_branch_the_figures_have() -> None:
    """So the comparison above cannot pass on editions too tame to tell the two apart."""
    reports = [report_before_speedup.compute(_edition(s, True)) for s in range(400)]
    assert any(r.unmatched_events for r in reports)
    assert any(not r.unmatched_events and r.events for r in reports)
    assert {rule for r in reports for rule in r.scanners.by_rule} == {
        "user agent", "before delivery", "link sweep"
    }  # fmt: skip
    assert any(r.delivery.bounced_soft and r.delivery.blocked for r in reports)
    groups = {g.name for r in reports for g in r.engagement.organisations if g.clickers}
    assert NO_ORGANISATION in groups and NOT_LISTED in groups
    assert any(r.trust.unsubscribes and r.engagement.machine_opens for r in reports)


def test_the_order_recipients_outcomes_and_clicks_are_read_in_changes_no_figure() -> None:
    """sources reads the ledger's recipients unsorted (sorting 100k rows cost a fifth of the
    query): every figure must come out the same whatever order the rows arrive in."""
    differ = []
    for seed in range(200):
        data = _edition(seed, rolled_up=True)
        rng = random.Random(seed)
        recipients, outcomes, events = (list(data.recipients), list(data.outcomes or ()),
                                        list(data.events))  # fmt: skip
        for rows in (recipients, outcomes, events):
            rng.shuffle(rows)
        shuffled = dataclasses.replace(
            data, recipients=recipients, outcomes=outcomes, events=events
        )
        if compute(shuffled) != compute(data):
            differ.append(seed)
    assert differ == []
