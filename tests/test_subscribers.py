"""subscribers.csv as real exports deliver it: each quirk gets a fixture named after it."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from newsflash.errors import SubscribersError
from newsflash.subscribers import (
    STATUSES,
    Recipient,
    SubscriberList,
    SubscriberProblem,
    load_subscribers,
    parse_subscribers,
    summary_table,
)

FIXTURES = Path(__file__).parent / "fixtures" / "subscribers"


def load(name: str) -> SubscriberList:
    return load_subscribers(FIXTURES / name)


def emails(sl: SubscriberList) -> list[str]:
    return [r.email for r in sl.recipients]


def problems(sl: SubscriberList, severity: str) -> list[SubscriberProblem]:
    return [p for p in sl.problems if p.severity == severity]


def parse(text: str) -> SubscriberList:
    return parse_subscribers(text, Path("subscribers.csv"))


# --- one test per real-export quirk -------------------------------------------------------


def test_utf8_bom_does_not_hide_the_email_column() -> None:
    sl = load("utf8_bom_comma_delimited.csv")

    assert emails(sl) == ["ann@example.org"]
    assert sl.recipients[0].first_name == "Ann"
    assert sl.problems == ()


def test_semicolon_delimited_file_keeps_commas_inside_values() -> None:
    sl = load("semicolon_delimited_with_bom.csv")

    ann, bob = sl.recipients
    assert ann.organisation == "ACME, Inc."
    assert ann.segments == {"partners", "wg1"}
    assert (bob.email, bob.status, bob.language) == ("bob@example.org", "unsubscribed", "de")
    assert sl.problems == ()


def test_tab_delimited_file_is_read() -> None:
    sl = load("tab_delimited.csv")

    assert emails(sl) == ["ann@example.org", "bob@example.org"]
    assert [r.organisation for r in sl.recipients] == ["ACME; Inc.", "Volta, GmbH"]
    assert sl.recipients[0].segments == {"partners", "wg1"}
    assert sl.problems == ()


def test_excel_unicode_text_utf16_tab_file_is_read() -> None:
    sl = load("excel_unicode_text_utf16_tab.csv")

    assert [(r.email, r.first_name) for r in sl.recipients] == [("jose@example.es", "José")]
    assert sl.problems == ()


def test_stray_spaces_around_headers_and_values_are_trimmed() -> None:
    sl = load("stray_spaces.csv")

    (ann,) = sl.recipients
    assert (ann.email, ann.first_name, ann.status) == ("ann@example.org", "Ann", "subscribed")
    assert ann.segments == {"partners", "wg1"}
    assert sl.problems == ()


def test_mixed_case_address_merges_with_its_lowercase_duplicate() -> None:
    sl = load("mixed_case_duplicate.csv")

    (ann,) = sl.recipients
    assert ann.email == "Ann.Lee@example.org"  # email-validator keeps the local part's case
    assert ann.first_name == "Ann"  # first occurrence wins
    assert ann.segments == {"partners", "wg1"}
    (warning,) = sl.problems
    assert (warning.severity, warning.line) == ("warning", 3)
    assert "line 2" in warning.message


def test_blank_lines_are_skipped_silently_and_line_numbers_stay_physical() -> None:
    sl = load("blank_lines.csv")

    assert [(r.email, r.line) for r in sl.recipients] == [
        ("ann@example.org", 4),
        ("bob@example.org", 8),
    ]
    assert sl.problems == ()


def test_latin1_file_is_read_with_a_warning_and_accents_intact() -> None:
    sl = load("latin1_encoded.csv")

    names = [(r.first_name, r.last_name, r.organisation) for r in sl.recipients]
    assert names == [
        ("José", "Núñez", "Universidad de León"),
        ("Françoise", "Müller", "Straße AG"),
    ]
    (warning,) = sl.problems
    assert warning.severity == "warning"
    assert warning.line == 2  # the first line that is not UTF-8
    assert "Latin-1" in warning.message
    assert "UTF-8" in warning.message


def test_invalid_address_is_reported_by_line_and_skipped() -> None:
    sl = load("invalid_address.csv")

    assert emails(sl) == ["ann@example.org", "carol@example.org"]
    errors = problems(sl, "error")
    assert [p.line for p in errors] == [3, 5]
    assert "bob(at)example.org" in errors[0].message
    assert "dave@localhost" in errors[1].message


def test_unknown_status_is_reported_with_did_you_mean() -> None:
    sl = load("unknown_status.csv")

    assert emails(sl) == ["ann@example.org"]
    (error,) = sl.problems
    assert (error.severity, error.line) == ("error", 3)
    assert "did you mean 'unsubscribed'" in error.message


def test_empty_status_is_an_error_not_assumed_subscribed() -> None:
    sl = load("empty_status.csv")

    assert sl.recipients == ()
    (error,) = sl.problems
    assert (error.severity, error.line) == ("error", 2)
    assert "status is empty" in error.message


def test_duplicate_is_merged_with_a_warning_and_opted_out_wins() -> None:
    sl = load("duplicate_opted_out.csv")

    ann, bob = sl.recipients  # file order, merged into the first occurrence
    assert (ann.email, ann.first_name, ann.line) == ("ann@example.org", "Ann", 2)
    assert ann.segments == {"partners", "wg1"}
    assert ann.status == "unsubscribed"
    assert bob.email == "bob@example.org"
    (warning,) = sl.problems
    assert (warning.severity, warning.line) == ("warning", 4)
    assert "line 2" in warning.message
    assert ann not in sl.audience()


def test_strongest_opt_out_wins_whatever_the_order() -> None:
    sl = parse("email,status\na@example.org,complained\na@example.org,subscribed\n")

    assert sl.recipients[0].status == "complained"


def test_missing_email_column_names_the_columns_found() -> None:
    with pytest.raises(SubscribersError) as info:
        load("missing_email_column.csv")

    message = str(info.value)
    assert "`email`" in message
    assert "'e-mail address'" in message
    assert "'name'" in message


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(SubscribersError) as info:
        load_subscribers(tmp_path / "subscribers.csv")

    assert "create subscribers.csv with at least an `email` and a `status` column" in str(
        info.value
    )
    assert "README" in str(info.value)


def test_directory_instead_of_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SubscribersError, match="directory"):
        load_subscribers(tmp_path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text("\n\n")

    with pytest.raises(SubscribersError, match="empty"):
        load_subscribers(path)


def test_unknown_column_is_a_warning_with_did_you_mean() -> None:
    sl = load("unknown_column.csv")

    assert emails(sl) == ["ann@example.org"]
    (warning,) = sl.problems
    assert (warning.severity, warning.line) == ("warning", 1)
    assert "'organization'" in warning.message
    assert "did you mean 'organisation'" in warning.message


def test_unquoted_delimiter_in_value_is_an_error_not_a_shifted_row() -> None:
    sl = load("unquoted_delimiter_in_value.csv")

    assert emails(sl) == ["bob@example.org"]
    assert sl.recipients[0].organisation == "Volta, GmbH"
    (error,) = sl.problems
    assert (error.severity, error.line) == ("error", 2)
    assert "quotes" in error.message


def test_quoted_value_spanning_lines_keeps_physical_line_numbers() -> None:
    sl = load("quoted_multiline_value.csv")

    assert sl.recipients[0].organisation == "ACME Research Division"  # line break collapsed
    (error,) = sl.problems
    assert error.line == 4


def test_only_email_and_status_columns_default_to_english_and_no_names() -> None:
    (r,) = parse("email,status\nann@example.org,subscribed\n").recipients

    assert (r.status, r.language, r.first_name, r.segments) == ("subscribed", "en", "", frozenset())


def test_segments_split_on_any_separator_and_are_lowercased() -> None:
    (r,) = parse(
        'email,segments,status\nann@example.org,"Partners; WG1,battery|Solar  wind",subscribed\n'
    ).recipients

    assert r.segments == {"partners", "wg1", "battery", "solar", "wind"}


# --- audience, counts, ids, rendering -------------------------------------------------------


def test_audience_filters_by_segment_and_status() -> None:
    sl = load("audience_segments.csv")

    everyone = [r.email.split("@")[0] for r in sl.audience()]
    wg1 = [r.email.split("@")[0] for r in sl.audience(["WG1"])]
    wg1_or_battery = [r.email.split("@")[0] for r in sl.audience(["wg1", "battery"])]

    assert everyone == ["ann", "bob", "carol", "erin"]
    assert wg1 == ["ann", "bob"]
    assert wg1_or_battery == ["ann", "bob", "carol"]
    assert [r.email.split("@")[0] for r in sl.audience("partners")] == ["ann"]
    assert sl.audience(["nobody-here"]) == ()


def test_counts_by_status_and_total() -> None:
    sl = load("audience_segments.csv")

    assert sl.counts() == {
        "subscribed": 4,
        "unsubscribed": 1,
        "bounced": 1,
        "complained": 1,
        "total": 7,
    }
    assert tuple(sl.counts())[: len(STATUSES)] == STATUSES


def test_recipient_id_is_stable_and_case_insensitive() -> None:
    def recipient(email: str) -> Recipient:
        return Recipient(email, "", "", "", frozenset(), "subscribed", "en", 2)

    expected = hashlib.sha256(b"ann@example.org").hexdigest()[:16]
    assert recipient("ann@example.org").recipient_id == expected
    assert recipient("Ann@Example.ORG").recipient_id == expected
    assert expected == "438c4c7afe600cdf"  # pinned: the ledger and SendGrid args store it


def test_problem_reads_like_a_compiler_message() -> None:
    problem = SubscriberProblem(Path("subscribers.csv"), 7, "bad", "error")

    assert str(problem) == "subscribers.csv:7: error: bad"
    assert str(SubscriberProblem(Path("s.csv"), None, "x", "warning")) == "s.csv: warning: x"


def test_summary_table_shows_counts_segments_audience_and_problems() -> None:
    sl = parse(
        "email,segments,status\n"
        "ann@example.org,wg1,subscribed\n"
        "bob@example.org,wg1,unsubscribed\n"
        "bad-address,[wg2],subscribed\n"
    )
    console = Console(record=True, width=200)

    console.print(summary_table(sl, ["wg1", "wg9"]))
    text = console.export_text()

    assert "unsubscribed" in text
    assert "segment wg1" in text
    assert "1 subscribed of 2" in text
    assert "segment wg9" in text  # asked for but empty: worth flagging before a send
    assert "audience (wg1, wg9)" in text
    assert "line 4 error" in text
    assert "'bad-address'" in text


# --- properties ---------------------------------------------------------------------------

HEADERS = st.sampled_from(
    [
        "email",
        "email,first_name,segments,status,language",
        "Email ; Status ; Segments",
        "email\tstatus",
        "\ufeffemail|status",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.builds(lambda h, body: f"{h}\n{body}", HEADERS, st.text())))
@example('email\n"unclosed')
@example("email,status\n\x00,\r\r\n")
@example("\ufeff\ufeffemail")
def test_arbitrary_text_gives_a_list_or_subscribers_error(text: str) -> None:
    try:
        sl = parse(text)
    except SubscribersError:
        return
    assert isinstance(sl, SubscriberList)
    assert all(r.status in STATUSES for r in sl.recipients)
    assert len({r.email.lower() for r in sl.recipients}) == len(sl.recipients)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(), st.binary().map(lambda b: b"email,status\n" + b)))
@example(b"\xff\xfe\x00")  # a UTF-16 BOM followed by half a character
@example(b"\xff\xfee\x00m\x00a\x00i\x00l\x00")
@example(b"email\n\xff\xfeann@example.org")
def test_arbitrary_bytes_give_a_list_or_subscribers_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "subscribers.csv"
        path.write_bytes(data)
        try:
            sl = load_subscribers(path)
        except SubscribersError:
            return
    assert isinstance(sl, SubscriberList)


ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
ADDRESSES = st.one_of(
    st.emails(),
    st.from_regex(
        rf"\A[.{ATEXT}]{{1,70}}@[A-Za-z0-9.-]{{0,70}}"
        r"(\.(com|ORG|x|test|local|arpa|invalid|onion|c0m|xn--bcher-kva|123))?\Z"
    ),
    st.from_regex(r"\A(info|Info|POSTMASTER|abuse)@[A-Za-z0-9-]{1,10}\.org\Z"),
    st.from_regex(r"\A[a-z]{1,200}@[a-z]{1,63}\.[a-z]{1,63}\.[a-z]{1,63}\Z"),
)


@settings(max_examples=500)
@given(ADDRESSES)
@example("a@xn--bcher-kva.ch")
@example("a@ab--cd.org")
@example("a@foo.local")
@example("a@example.123")
@example("a" * 65 + "@example.org")
@example("Info@Example.ORG")
def test_normalised_address_matches_email_validator(address: str) -> None:
    """The parser skips email-validator's slow checks for plain ASCII: verdicts must not change."""
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=False)
        expected: str | None = valid.ascii_email or valid.normalized
    except EmailNotValidError:
        expected = None

    sl = parse(f'email,status\n"{address}",subscribed\n')

    assert [r.email for r in sl.recipients] == ([expected] if expected else [])
    assert len(sl.problems) == (0 if expected else 1)


def test_an_address_also_on_a_row_with_a_misspelt_status_is_held_out_of_the_audience(
    tmp_path: Path,
) -> None:
    text = (
        "email,first_name,status\n"
        "ann@example.org,Ann,subscribed\n"
        "ANN@example.org,Ann,unsubscibed\n"
        "bob@example.org,Bob,subscribed\n"
    )
    sl = parse_subscribers(text, tmp_path / "subscribers.csv")
    assert [r.email for r in sl.audience()] == ["bob@example.org"]
    assert any(p.line == 3 and p.severity == "error" for p in sl.problems)
    held = [p for p in sl.problems if "also stands on line 3" in p.message]
    assert held and held[0].line == 2 and held[0].severity == "warning"


def test_international_domain_is_kept_as_punycode_and_non_ascii_local_part_is_refused() -> None:
    sl = parse("email,status\nhans@müller.de,subscribed\njürgen@example.de,subscribed\n")

    assert [r.email for r in sl.recipients] == ["hans@xn--mller-kva.de"]
    (error,) = sl.problems
    assert error.line == 3 and "jürgen@example.de" in error.message
