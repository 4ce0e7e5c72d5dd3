"""The roster: duplicates merged in SQLite, the send's audience chosen there, as the list says.

The merge once lived in a dict; each test here is a way the SQLite roster could say something
else than the list read into Python objects: duplicates further apart than the chunk of rows
SQLite is handed at once, warnings out of line order, a segment matched as part of another
name, the audience rule applied in SQL rather than by `SubscriberList.audience`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflash import subscriber_roster
from newsflash.cli import main
from newsflash.config import load_config
from newsflash.errors import SubscribersError
from newsflash.sending.audience import Audience
from newsflash.state.ledger import LedgerRecipient
from newsflash.subscriber_list import segment_filter
from newsflash.subscriber_parser import Parser
from newsflash.subscriber_rows import lines
from newsflash.subscribers import load_subscribers, parse_subscribers, recipient_id

HEADER = "email,first_name,last_name,organisation,segments,status,language\n"
FAR = 10_000  # rows between two copies of an address: more than one chunk handed to SQLite


def filler(n: int, start: int = 0) -> str:
    return "".join(f"p{i}@example.org,,,,partners,subscribed,\n" for i in range(start, start + n))


def write_list(workspace: Path, text: str, segments: str = '["partners"]') -> Audience:
    (workspace / "subscribers.csv").write_text(text, encoding="utf-8")
    config = workspace / "config.toml"
    toml = config.read_text(encoding="utf-8")
    config.write_text(toml.replace('segments = ["partners"]', f"segments = {segments}"))
    return Audience(load_config(config))


def test_a_duplicate_further_apart_than_a_chunk_is_merged_into_its_first_row() -> None:
    text = (
        HEADER
        + "Ann@Example.org,Ann,,,wg1,subscribed,\n"
        + filler(FAR)
        + "ann@example.ORG,Anna,Keller,ACME,wg2,subscribed,de\n"
    )

    sl = parse_subscribers(text, Path("subscribers.csv"))

    ann = sl.recipients[0]
    assert (ann.email, ann.first_name, ann.last_name, ann.organisation) == (
        "Ann@example.org",  # the domain is lowercased as every address's is
        "Ann",
        "Keller",
        "ACME",
    )
    assert (ann.segments, ann.language, ann.line) == (frozenset({"wg1", "wg2"}), "de", 2)
    assert sl.counts()["total"] == FAR + 1
    (warning,) = sl.problems
    assert warning.line == FAR + 3
    assert warning.message.startswith("ann@example.org also appears on line 2; merged into line 2")


def test_an_opt_out_on_a_far_later_copy_keeps_the_partner_out_of_the_send(
    workspace: Path,
) -> None:
    text = (
        HEADER
        + "ann@example.org,Ann,,,partners,subscribed,\n"
        + filler(FAR)
        + "ANN@example.org,,,,partners,unsubscribed,\n"
        + "Ann@Example.Org,,,,partners,subscribed,\n"
    )

    audience = write_list(workspace, text)

    assert len(audience) == FAR
    assert "ann@example.org" not in audience
    assert not any(r.email.lower() == "ann@example.org" for r in audience.members())
    assert (
        audience.person(LedgerRecipient(recipient_id("ann@example.org"), "ann@example.org")) is None
    )
    assert audience.reason("Ann@example.org").startswith("unsubscribed")


def test_each_merge_warning_stands_among_the_other_problems_in_line_order() -> None:
    text = (
        HEADER
        + "ann@example.org,Ann,,,,subscribed,\n"  # 2
        + "bob@example.org,,,,,subscrbed,\n"  # 3: error
        + "ANN@example.org,=HYPERLINK(1),,,,bounced,\n"  # 4: a formula, then the merge
        + "not an address,,,,,subscribed,\n"  # 5: error
        + "bob@example.org,Bob,,,,subscribed,\n"  # 6: held (line 3 may be its opt-out)
        + "ann@example.org,,,,,subscribed,\n"  # 7: merge
    )

    sl = parse_subscribers(text, Path("subscribers.csv"))

    said = [(p.line, p.severity, p.message.split(" ")[0]) for p in sl.problems]
    assert said == [
        (3, "error", "unknown"),
        (4, "warning", "first_name"),
        (4, "warning", "ANN@example.org"),
        (5, "error", said[3][2]),
        (7, "warning", "ann@example.org"),
        (6, "warning", "bob@example.org"),
    ]
    assert "status 'bounced' from line 4 wins over 'subscribed'" in sl.problems[2].message
    assert "status 'bounced' from line 2 wins over 'subscribed'" in sl.problems[4].message
    assert "also stands on line 3" in sl.problems[5].message
    assert [r.status for r in sl.recipients] == ["bounced", "subscribed"]
    assert sl.audience() == ()


def test_a_segment_is_matched_whole_not_as_part_of_another_name(workspace: Path) -> None:
    text = (
        HEADER
        + "a@example.org,,,,wg10,subscribed,\n"
        + "b@example.org,,,,wg1x;xwg1,subscribed,\n"
        + "c@example.org,,,,wg_1,subscribed,\n"
        + "d@example.org,,,,%,subscribed,\n"
        + "e@example.org,,,,WG1,subscribed,\n"
        + "f@example.org,,,,a wg1 b,subscribed,\n"
    )

    audience = write_list(workspace, text, segments='["wg1", "%"]')

    assert [r.email for r in audience.members()] == [
        "d@example.org",
        "e@example.org",
        "f@example.org",
    ]


def test_a_partner_in_no_segment_is_mailed_only_when_no_segment_is_asked_for(
    workspace: Path,
) -> None:
    text = HEADER + "a@example.org,,,,,subscribed,\n" + "b@example.org,,,,wg1,subscribed,\n"

    assert [r.email for r in write_list(workspace, text, segments="[]").members()] == [
        "a@example.org",
        "b@example.org",
    ]


def test_a_batch_comes_back_in_its_own_order_with_the_names_the_list_has_now(
    workspace: Path,
) -> None:
    text = HEADER + filler(3000) + "zoe@example.org,Zoé,Ö'Brien,,partners,subscribed,\n"
    audience = write_list(workspace, text)
    frozen = list(audience.members())
    batch = [frozen[-1], LedgerRecipient("0" * 16, "gone@example.org"), *frozen[:1500]]

    people = audience.people(batch)

    assert len(people) == len(batch) and people[1] is None
    zoe = people[0]
    assert zoe is not None and (zoe.email, zoe.display_name) == ("zoe@example.org", "Zoé Ö'Brien")
    assert [p.email for p in people[2:] if p] == [r.email for r in frozen[:1500]]


def test_a_batchs_names_come_back_exactly_as_the_list_has_them(workspace: Path) -> None:
    """The names are fetched as one row of JSON: quotes, backslashes, non-ASCII and characters
    outside the BMP come back as the roster's own rows hold them."""
    names = ['"Zo\\é"', "Ö'Brien 😀", "Ünal", "ß\\n", "a\tb", "中文"]
    rows = "".join(
        f'p{i}@example.org,"{n.replace(chr(34), chr(34) * 2)}","{names[-1 - i]}",,partners,'
        "subscribed,\n"
        for i, n in enumerate(names)
    )
    audience = write_list(workspace, HEADER + rows)
    people = audience.people(list(audience.members()))
    listed = list(audience.roster.recipients())
    assert [(p.email, p.first_name, p.full_name) for p in people if p] == [
        (r.email, r.first_name, f"{r.first_name} {r.last_name}") for r in listed
    ]
    assert [r.first_name for r in listed] == [n.replace("\t", " ") for n in names]


ADDRESSES = st.sampled_from(
    ["a@x.org", "A@X.org", "b@x.org", "B@x.org", "c@y.org", "not-an-address", ""]
)
SEGMENTS = st.sampled_from(["", "wg1", "wg1;wg2", "WG2 partners", "wg10", "partners|wg1"])
STATUS = st.sampled_from(["subscribed", "Subscribed", "unsubscribed", "bounced", "", "subscrbed"])
ROWS = st.lists(st.tuples(ADDRESSES, st.sampled_from(["", "Ann"]), SEGMENTS, STATUS), max_size=30)
WANTED = st.lists(st.sampled_from(["wg1", "wg2", "partners", "wg10", "nobody"]), max_size=3)


@settings(max_examples=150, deadline=None)
@given(rows=ROWS, wanted=WANTED)
def test_the_send_audience_is_the_lists_own_audience_rule(
    rows: list[tuple[str, str, str, str]], wanted: list[str]
) -> None:
    text = "email,first_name,segments,status\n" + "".join(",".join(r) + "\n" for r in rows)

    with Parser(lines(text), Path("subscribers.csv")).run() as roster:
        listed = roster.to_list()
        roster.choose(segment_filter(wanted))
        chosen = list(roster.audience())
        size = roster.audience_size()
        reasons = roster.reasons([r.email.lower() for r in listed.recipients])

    expected = [r.email for r in listed.audience(wanted)]
    assert chosen == expected
    assert size == len(expected)
    assert [r.email for r in listed.recipients if reasons[r.email.lower()] is None] == expected
    for r in listed.recipients:
        if r.email not in expected:
            assert reasons[r.email.lower()] == r.status


def test_a_temporary_folder_too_full_for_the_roster_is_a_clear_error_not_a_traceback(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own limit on the scratch file's size stands in for a full temporary folder:
    the same "database or disk is full" a real one gives, from a real write."""
    monkeypatch.setattr(
        subscriber_roster, "_SCHEMA", subscriber_roster._SCHEMA + "PRAGMA max_page_count = 8;\n"
    )
    path = workspace / "subscribers.csv"
    path.write_text(HEADER + filler(20_000), encoding="utf-8")
    with pytest.raises(SubscribersError, match="could not be kept in a temporary file") as e:
        load_subscribers(path)
    assert "full" in str(e.value) and str(path) in str(e.value)
    result = CliRunner().invoke(main, ["--config", str(workspace / "config.toml"), "subscribers"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "could not be kept in a temporary file" in result.output
