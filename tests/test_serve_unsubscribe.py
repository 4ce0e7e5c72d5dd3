"""One-click unsubscribe over real HTTP against uvicorn, with tokens made by the token module:
the RFC 8058 POST, the GET page, its undo, and every way a token or an undo can be wrong."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import SECRET, Clock, Server, running

from newsflash.config import load_config
from newsflash.serve.app import create_app
from newsflash.state.suppressions import SuppressionStore
from newsflash.subscribers import recipient_id
from newsflash.tokens import SecretError, Signer

ANNA = "anna.keller@example.org"
ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(workspace: Path, clock: Clock) -> Iterator[Server]:
    config = load_config(workspace / "config.toml")
    with running(create_app(config, environ={"NEWSFLASH_SECRET": SECRET}, clock=clock)) as srv:
        yield srv


def token(address: str = ANNA, secret: str = SECRET) -> str:
    return Signer([secret]).unsubscribe_token(recipient_id(address))


def active(workspace: Path) -> list[tuple[str, str, str]]:
    store = SuppressionStore.in_state(workspace / "state")
    try:
        return [(r.address, r.reason, r.source) for r in store.rows()]
    finally:
        store.close()


def undo_fields(page: str) -> str:
    values = dict(re.findall(r'name="([stm])" value="([^"]*)"', page))
    return f"s={values['s']}&t={values['t']}&m={values['m']}"


def unsubscribe_on_page(server: Server, tok: str) -> str:
    answer = server.form(f"/unsubscribe/{tok}", f"{ONE_CLICK}&page=1")
    assert answer.status == 200
    return answer.text


def test_a_one_click_post_unsubscribes_at_once_with_200_and_no_page(server, workspace):
    answer = server.form(f"/unsubscribe/{token()}", ONE_CLICK)
    assert answer.status == 200
    assert "<form" not in answer.text
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_a_one_click_post_as_multipart_form_data_unsubscribes(server, workspace):
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n--XyZ--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=XyZ"}
    answer = server.request("POST", f"/unsubscribe/{token()}", body, headers)
    assert answer.status == 200
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_the_unsubscribe_is_on_disk_when_the_answer_arrives(server, workspace):
    """A second process (a send) sees it the moment the 200 is read."""
    server.form(f"/unsubscribe/{token()}", ONE_CLICK)
    store = SuppressionStore.in_state(workspace / "state")
    try:
        assert store.suppressed(["ANNA.Keller@example.org", "marc.dubois@example.com"]) == {ANNA}
    finally:
        store.close()


def test_a_second_one_click_post_is_harmless_and_stores_one_row(server, workspace):
    for _ in range(3):
        assert server.form(f"/unsubscribe/{token()}", ONE_CLICK).status == 200
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_a_post_without_one_click_is_refused_and_unsubscribes_nobody(server, workspace):
    answer = server.form(f"/unsubscribe/{token()}", "something=else")
    assert answer.status == 400
    assert "List-Unsubscribe=One-Click" in answer.text
    assert active(workspace) == []


def test_a_get_shows_a_page_with_one_button_and_unsubscribes_nobody(server, workspace):
    answer = server.request("GET", f"/unsubscribe/{token()}")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.count("<button") == 1
    assert 'method="post"' in answer.text
    assert 'value="One-Click"' in answer.text
    assert "a…@example.org" in answer.text
    assert ANNA not in answer.text  # the full address is not harvestable from a link
    assert active(workspace) == []


def test_a_head_request_from_a_link_scanner_unsubscribes_nobody(server, workspace):
    assert server.request("HEAD", f"/unsubscribe/{token()}").status == 200
    assert active(workspace) == []


def test_pages_are_not_cached_framed_or_leaking_the_token_as_referer(server):
    answer = server.request("GET", f"/unsubscribe/{token()}")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "<script" not in answer.text
    assert "http" not in re.sub(r'<html lang="[^"]*">', "", answer.text)  # no outside assets


def test_the_page_button_unsubscribes_and_offers_an_undo_that_resubscribes(server, workspace):
    tok = token()
    page = unsubscribe_on_page(server, tok)
    assert "You are unsubscribed" in page
    assert f'action="{tok}/undo"' in page
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]
    answer = server.form(f"/unsubscribe/{tok}/undo", undo_fields(page))
    assert answer.status == 200
    assert "subscribed again" in answer.text
    assert active(workspace) == []
    store = SuppressionStore.in_state(workspace / "state")
    try:
        history = store.rows(include_lifted=True)
    finally:
        store.close()
    assert [(r.reason, r.lifted_by) for r in history] == [("unsubscribe", "one-click undo")]


def test_an_undo_works_once(server, workspace):
    tok = token()
    fields = undo_fields(unsubscribe_on_page(server, tok))
    assert server.form(f"/unsubscribe/{tok}/undo", fields).status == 200
    server.form(f"/unsubscribe/{tok}", ONE_CLICK)  # unsubscribes again
    assert server.form(f"/unsubscribe/{tok}/undo", fields).status == 400
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_an_undo_expires_after_thirty_minutes(server, workspace, clock):
    tok = token()
    fields = undo_fields(unsubscribe_on_page(server, tok))
    clock.advance(minutes=31)
    assert server.form(f"/unsubscribe/{tok}/undo", fields).status == 400
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_no_undo_is_offered_to_whoever_clicks_after_the_partner_left(server, workspace):
    """Someone the email was forwarded to must not be able to resubscribe its owner."""
    tok = token()
    assert server.form(f"/unsubscribe/{tok}", ONE_CLICK).status == 200  # the partner leaves
    page = unsubscribe_on_page(server, tok)  # the forwardee clicks later
    assert "/undo" not in page
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_an_undo_from_another_site_is_refused(server, workspace):
    tok = token()
    fields = undo_fields(unsubscribe_on_page(server, tok))
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://other.example.org"},
    ):
        assert server.form(f"/unsubscribe/{tok}/undo", fields, headers).status == 403
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_an_undo_from_our_own_page_passes_the_origin_check(server, workspace):
    tok = token()
    fields = undo_fields(unsubscribe_on_page(server, tok))
    headers = {"Origin": server.base, "Sec-Fetch-Site": "same-origin"}
    assert server.form(f"/unsubscribe/{tok}/undo", fields, headers).status == 200
    assert active(workspace) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: re.sub(r"m=[^&]*", "m=AAAA", f), id="forged-mac"),
        pytest.param(lambda f: re.sub(r"s=\d+", "s=2", f), id="other-row"),
        pytest.param(lambda f: re.sub(r"t=\d+", "t=9999999999", f), id="moved-time"),
        pytest.param(lambda f: "", id="empty"),
        pytest.param(lambda f: f.replace("s=", "s=-"), id="negative-id"),
        pytest.param(lambda f: "&".join(["x=1"] * 50), id="field-flood"),
    ],
)
def test_a_tampered_undo_is_refused_and_the_partner_stays_unsubscribed(server, workspace, change):
    tok = token()
    fields = undo_fields(unsubscribe_on_page(server, tok))
    assert server.form(f"/unsubscribe/{tok}/undo", change(fields)).status == 400
    assert active(workspace) == [(ANNA, "unsubscribe", "one-click")]


def test_an_undo_ticket_for_one_partner_does_not_resubscribe_another(server, workspace):
    marc = "marc.dubois@example.com"
    server.form(f"/unsubscribe/{token(marc)}", ONE_CLICK)
    fields = undo_fields(unsubscribe_on_page(server, token()))
    assert server.form(f"/unsubscribe/{token(marc)}/undo", fields).status == 400
    assert sorted(active(workspace)) == [
        (ANNA, "unsubscribe", "one-click"),
        (marc, "unsubscribe", "one-click"),
    ]


def test_an_undo_never_lifts_a_bounce_recorded_meanwhile(server, workspace):
    tok = token()
    fields = undo_fields(unsubscribe_on_page(server, tok))
    store = SuppressionStore.in_state(workspace / "state")
    try:
        store.add(ANNA, "bounce", "webhook")
    finally:
        store.close()
    assert server.form(f"/unsubscribe/{tok}/undo", fields).status == 200
    assert active(workspace) == [(ANNA, "bounce", "webhook")]


def _bad_tokens() -> list[object]:
    good = Signer([SECRET]).unsubscribe_token(recipient_id(ANNA))
    rid, mac = good.split(".")
    return [
        pytest.param(Signer(["another-secret-" + "x" * 40]).unsubscribe_token(rid), id="forged"),
        pytest.param(token("nobody@example.net"), id="unknown-recipient"),
        pytest.param(rid, id="bare-recipient-id"),
        pytest.param(f"{rid}.{mac[:-1]}", id="truncated"),
        pytest.param(f"{rid}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}", id="one-char-off"),
        pytest.param(f"{rid.upper()}.{mac}", id="uppercased-id"),
        pytest.param(f"{rid}.{mac}.{mac}", id="doubled"),
        pytest.param("x" * 2000, id="very-long"),
        pytest.param("%00", id="nul"),
        pytest.param("%3Cscript%3E", id="markup"),
        pytest.param("..", id="dot-dot"),
        pytest.param("%E2%80%AE" + rid, id="unicode-override"),
    ]


@pytest.mark.parametrize("bad", _bad_tokens())
def test_every_bad_token_gets_the_same_plain_400(server, workspace, bad):
    reference = server.request("GET", f"/unsubscribe/{token('nobody@example.net')}")
    for method in ("GET", "POST"):
        answer = (
            server.form(f"/unsubscribe/{bad}", ONE_CLICK)
            if method == "POST"
            else server.request("GET", f"/unsubscribe/{bad}")
        )
        assert answer.status == 400
        assert answer.body == reference.body
        assert answer.headers["content-type"] == reference.headers["content-type"]
        assert answer.headers.keys() == reference.headers.keys()
    assert active(workspace) == []


def test_a_token_with_a_slash_reaches_no_handler(server, workspace):
    assert server.form("/unsubscribe/..%2F..%2Fetc%2Fpasswd", ONE_CLICK).status == 404
    assert active(workspace) == []


def test_the_old_hash_only_link_no_longer_unsubscribes(server, workspace):
    """sha256(address)[:16] is computable by anyone who knows an address."""
    answer = server.form(f"/unsubscribe/{recipient_id(ANNA)}", ONE_CLICK)
    assert answer.status == 400
    assert active(workspace) == []


def test_a_token_signed_with_the_previous_secret_still_works_after_rotation(workspace, clock):
    old, new = SECRET, "the-new-secret-" + "n" * 40
    config = load_config(workspace / "config.toml")
    env = {"NEWSFLASH_SECRET": f"{new}, {old}"}
    with running(create_app(config, environ=env, clock=clock)) as srv:
        assert srv.form(f"/unsubscribe/{token(secret=old)}", ONE_CLICK).status == 200
        assert (
            srv.form(f"/unsubscribe/{token('marc.dubois@example.com', new)}", ONE_CLICK).status
            == 200
        )
    assert len(active(workspace)) == 2


def test_a_partner_already_unsubscribed_in_the_csv_can_still_click(server, workspace):
    assert server.form(f"/unsubscribe/{token('piotr.nowak@example.org')}", ONE_CLICK).status == 200
    assert active(workspace) == [("piotr.nowak@example.org", "unsubscribe", "one-click")]


def test_a_partner_removed_from_the_csv_after_unsubscribing_can_still_undo(server, workspace):
    tok = token()
    fields = undo_fields(unsubscribe_on_page(server, tok))
    csv = workspace / "subscribers.csv"
    csv.write_text("\n".join(ln for ln in csv.read_text().splitlines() if ANNA not in ln) + "\n")
    assert server.form(f"/unsubscribe/{tok}/undo", fields).status == 200


def test_an_unreadable_partner_list_answers_503_not_invalid(server, workspace):
    (workspace / "subscribers.csv").unlink()
    answer = server.form(f"/unsubscribe/{token()}", ONE_CLICK)
    assert answer.status == 503


def test_an_oversized_form_gets_413(server, workspace):
    answer = server.form(f"/unsubscribe/{token()}", ONE_CLICK + "&pad=" + "x" * 10_000)
    assert answer.status == 413
    assert active(workspace) == []


def test_health_answers_ok(server):
    answer = server.request("GET", "/healthz")
    assert (answer.status, answer.text) == (200, "ok\n")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "is not set"),
        ("   ,  ", "is not set"),
        ("short", "fewer than 32"),
        (SECRET + ",short", "secret no. 2"),
    ],
)
def test_a_missing_or_weak_secret_is_a_clear_error_saying_how_to_make_one(workspace, value, words):
    config = load_config(workspace / "config.toml")
    with pytest.raises(SecretError, match="NEWSFLASH_SECRET") as info:
        create_app(config, environ={"NEWSFLASH_SECRET": value})
    assert words in str(info.value)
    assert "secrets.token_urlsafe" in str(info.value)


def test_newsflash_serve_without_a_secret_is_one_line_and_exit_1(workspace, monkeypatch):
    from click.testing import CliRunner

    from newsflash.cli import main

    monkeypatch.chdir(workspace)
    monkeypatch.delenv("NEWSFLASH_SECRET", raising=False)
    result = CliRunner().invoke(main, ["serve", "--port", "1"], catch_exceptions=True)
    assert result.exit_code == 1
    assert result.output.startswith("error: NEWSFLASH_SECRET is not set")
    assert "Traceback" not in result.output
