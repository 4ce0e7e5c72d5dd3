"""subscribers.csv as real exports deliver it: each quirk gets a fixture named after it."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tempfile
from dataclasses import dataclass
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


# --- issue 8: a list that cannot say who opted out is not sent to --------------------------


def test_a_list_without_a_status_column_is_refused_with_how_to_add_it() -> None:
    with pytest.raises(SubscribersError) as info:
        load("no_status_column.csv")  # the sample list with its unsubscribed/bounced partners

    message = str(info.value)
    assert "no_status_column.csv:1: no `status` column" in message
    assert "add a `status` column and write `subscribed`" in message


def test_a_misspelt_status_header_is_refused_with_the_rename_to_make() -> None:
    with pytest.raises(SubscribersError) as info:
        load("misspelt_status_header.csv")

    assert "rename 'staus' to `status`" in str(info.value)


@pytest.mark.parametrize("column", ["status", "email"])
def test_a_required_column_written_twice_is_refused_naming_both_positions(column: str) -> None:
    header = {"status": "email,status,first_name,Status", "email": "email,status,E-Mail,email"}
    with pytest.raises(SubscribersError, match=f"column `{column}` appears twice"):
        parse(header[column] + "\nann@example.org,subscribed,Ann,unsubscribed\n")


def test_an_empty_or_blank_status_cell_is_never_read_as_subscribed() -> None:
    sl = parse("email,status\nann@example.org,\nbob@example.org,   \nann@example.org,subscribed\n")

    assert sl.audience() == ()  # ann's other row may be her opt-out: held
    assert [p.line for p in problems(sl, "error")] == [2, 3]


# --- issue 8: one bad row is that row's problem --------------------------------------------


def test_a_cell_over_the_csv_field_limit_skips_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text(
        "email,first_name,status\n"
        "ann@example.org,Ann,subscribed\n"
        f"bob@example.org,{'x' * 140_000},subscribed\n"
        "carol@example.org,Carol,subscribed\n",
        encoding="utf-8",
    )
    sl = load_subscribers(path)

    assert emails(sl) == ["ann@example.org", "carol@example.org"]
    (error,) = sl.problems
    assert (error.severity, error.line) == ("error", 3)
    assert "too long" in error.message and len(error.message) < 300


def test_an_over_long_row_holds_back_its_address_in_case_it_is_an_opt_out() -> None:
    sl = parse(
        "email,first_name,status\n"
        "ann@example.org,Ann,subscribed\n"
        f"ann@example.org,{'x' * 140_000},unsubscribed\n"
    )

    assert sl.audience() == ()
    assert [p.line for p in problems(sl, "error")] == [3]


def test_one_latin1_row_in_a_utf8_file_keeps_every_utf8_name_intact() -> None:
    sl = load("utf8_with_one_latin1_row.csv")

    names = [(r.first_name, r.last_name) for r in sl.recipients]
    assert names == [("Björk", "Guðmundsdóttir"), ("José", "Núñez"), ("Zoë", "Lefèvre")]
    (warning,) = sl.problems
    assert (warning.severity, warning.line) == ("warning", 3)
    assert "first_name 'José'" in warning.message and "UTF-8" in warning.message


def test_a_non_utf8_address_is_never_guessed_and_only_its_row_is_skipped() -> None:
    sl = load("utf8_with_a_latin1_address.csv")

    assert [(r.email, r.first_name) for r in sl.recipients] == [("bjork@example.is", "Björk")]
    (error,) = sl.problems
    assert (error.severity, error.line) == ("error", 3)
    assert "never guessed" in error.message


# --- the hostile suite: no traceback, no opted-out partner mailed, no good row lost silently --

H = "email,first_name,status\n"


@dataclass(frozen=True)
class Hostile:
    data: bytes
    audience: list[str]  # who may be mailed, in file order
    errors: list[int] = dataclasses.field(default_factory=list)  # lines reported as errors
    warnings: list[int] = dataclasses.field(default_factory=list)
    first_name: str | None = None  # the first audience member's name, when that is the point


HOSTILE = {
    "nul_byte_in_an_address_skips_only_that_row": Hostile(
        (H + "ann@exa\x00mple.org,Ann,subscribed\nbob@example.org,Bob,subscribed\n").encode(),
        ["bob@example.org"],
        errors=[2],
    ),
    "nul_byte_in_a_name_is_removed_with_a_warning": Hostile(
        (H + "bob@example.org,B\x00ob,subscribed\n").encode(),
        ["bob@example.org"],
        warnings=[2],
        first_name="Bob",
    ),
    "cr_only_line_ends_are_rows": Hostile(
        b"email,first_name,status\rann@example.org,Ann,subscribed\rbob@example.org,B,unsubscribed\r",
        ["ann@example.org"],
    ),
    "a_header_row_only_is_an_empty_list": Hostile(H.encode(), []),
    "a_display_name_in_the_address_is_refused_and_holds_the_address": Hostile(
        (
            H + '"Ann Lee <ann@example.org>",Ann,unsubscribed\nann@example.org,Ann,subscribed\n'
        ).encode(),
        [],
        errors=[2],
        warnings=[3],
    ),
    "a_line_break_in_an_address_cell_never_mails_the_address_smuggled_after_it": Hostile(
        (
            H
            + '"ann@example.org\r\nBcc: eve@evil.org",Ann,subscribed\n'
            + "bob@example.org,B,subscribed\n"
        ).encode(),
        ["bob@example.org"],
        errors=[2, 3],
    ),
    "a_formula_in_a_name_is_kept_as_text_with_a_warning": Hostile(
        (H + "ann@example.org,=cmd|' /C calc'!A0,subscribed\n").encode(),
        ["ann@example.org"],
        warnings=[2],
        first_name="=cmd|' /C calc'!A0",
    ),
    "a_formula_in_the_address_cell_is_refused": Hostile(
        (
            H + '"=HYPERLINK(""http://x"")",Bob,subscribed\nann@example.org,Ann,subscribed\n'
        ).encode(),
        ["ann@example.org"],
        errors=[2],
    ),
    "control_characters_and_a_bidi_override_in_a_name_are_removed": Hostile(
        (H + 'ann@example.org,"A\x1b[1mn\u202en",subscribed\n').encode(),
        ["ann@example.org"],
        warnings=[2],
        first_name="A[1mnn",
    ),
    "a_line_break_in_a_name_never_reaches_the_to_header": Hostile(
        (H + '"ann@example.org","Ann\r\nBcc: eve",subscribed\n').encode(),
        ["ann@example.org"],
        first_name="Ann Bcc: eve",
    ),
    "utf16_without_a_bom_is_read": Hostile(
        (H + "ann@example.org,José,subscribed\n").encode("utf-16-le"),
        ["ann@example.org"],
        first_name="José",
    ),
    "a_bom_and_header_mid_file_where_two_lists_were_pasted_together_are_skipped": Hostile(
        (
            "\ufeff"
            + H
            + "ann@example.org,Ann,subscribed\n\ufeff"
            + H
            + "bob@example.org,B,subscribed\n"
        ).encode(),
        ["ann@example.org", "bob@example.org"],
        warnings=[3],
    ),
    "a_repeated_header_in_another_order_reads_the_rows_below_it_by_its_columns": Hostile(
        (
            H + "ann@example.org,Ann,subscribed\nstatus,email\nunsubscribed,ann@example.org\n"
        ).encode(),
        [],
        warnings=[3, 4],
    ),
    "a_quote_left_open_until_the_end_of_the_file_skips_only_its_row": Hostile(
        (
            b'email,status,first_name\nann@example.org,subscribed,"Ann\n'
            b"bob@example.org,subscribed,Bob\ncarol@example.org,unsubscribed,Carol\n"
        ),
        ["bob@example.org"],
        errors=[2],
    ),
    "a_stray_quote_closed_rows_later_does_not_swallow_the_rows_between": Hostile(
        (
            b'email,status,first_name\nann@example.org,subscribed,"Ann\n'
            b'bob@example.org,unsubscribed,Bob\ncarol@example.org,subscribed,Carol"\n'
        ),
        ["carol@example.org"],  # a quote inside an unquoted value is only a character
        errors=[2],
    ),
    "a_quoted_value_spanning_lines_without_an_address_is_kept": Hostile(
        (H + 'ann@example.org,"Ann\nMarie",subscribed\n').encode(),
        ["ann@example.org"],
        first_name="Ann Marie",
    ),
    "a_100k_long_line_of_delimiters_is_a_blank_line": Hostile(
        (H + "," * 100_000 + "\nann@example.org,Ann,subscribed\n").encode(),
        ["ann@example.org"],
    ),
    "a_100k_long_address_is_one_row_error_with_a_short_message": Hostile(
        (
            H + "b" * 100_000 + "@example.org,B,subscribed\nann@example.org,Ann,subscribed\n"
        ).encode(),
        ["ann@example.org"],
        errors=[2],
    ),
    "a_row_with_another_delimiter_is_reported_and_holds_its_address": Hostile(
        (H + "ann@example.org;Ann;unsubscribed\nann@example.org,Ann,subscribed\n").encode(),
        [],
        errors=[2, 2],
        warnings=[3],
    ),
    "an_unquoted_comma_in_an_opt_out_row_holds_its_address": Hostile(
        (
            b"email,organisation,status\nann@example.org,ACME, Inc.,unsubscribed\n"
            b"ann@example.org,ACME,subscribed\n"
        ),
        [],
        errors=[2],
        warnings=[3],
    ),
    "a_header_of_20000_unknown_columns_gives_a_few_warnings": Hostile(
        (
            "email,status,"
            + ",".join(f"x{i}" for i in range(20_000))
            + "\na@example.org,subscribed\n"
        ).encode(),
        ["a@example.org"],
        warnings=[1] * 6,
    ),
    "a_status_in_capitals_with_spaces_is_still_an_opt_out": Hostile(
        (H + "ann@example.org,Ann,  UNSUBSCRIBED \nbob@example.org,Bob,Subscribed\n").encode(),
        ["bob@example.org"],
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_list_never_mails_an_opted_out_partner_nor_drops_a_row_silently(
    case: Hostile, tmp_path: Path
) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(case.data)

    sl = load_subscribers(path)

    assert [r.email for r in sl.audience()] == case.audience
    assert [p.line for p in problems(sl, "error")] == case.errors
    assert [p.line for p in problems(sl, "warning")] == case.warnings
    assert all(len(p.message) < 600 for p in sl.problems)  # a 100k cell is not quoted whole
    if case.first_name is not None:
        assert sl.audience()[0].first_name == case.first_name
    for r in sl.recipients:  # what reaches a To: header: no line breaks, no control codes
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e]", r.first_name + r.last_name)


GARBAGE = st.text(alphabet=st.sampled_from(list('ann@example.org,;"\n\r\t status email\x00é')))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(GARBAGE, GARBAGE, GARBAGE)
@example("", '"', "")
@example('x,"', "", "")
@example("status,email\n", "", "")
@example("", "", "ann@example.org,Ann,subscribed\n")
def test_garbage_anywhere_never_puts_an_opted_out_partner_in_the_audience(
    before: str, between: str, after: str
) -> None:
    text = (
        "email,first_name,status\n"
        + before
        + "\nann@example.org,Ann,unsubscribed\n"
        + between
        + "\nbob@example.org,Bob,subscribed\n"
        + after
    )
    try:
        sl = parse(text)
    except SubscribersError:
        return
    assert "ann@example.org" not in [r.email.lower() for r in sl.audience()]
