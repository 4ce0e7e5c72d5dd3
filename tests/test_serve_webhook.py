"""SendGrid's Event Webhook over real HTTP against uvicorn: signed as SendGrid signs, refused
before parsing when not, stored once per event, applied to the suppression store."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import SECRET, START, Clock, SendGridKeys, Server, event, running

from newsflash.config import load_config
from newsflash.serve.app import create_app
from newsflash.serve.webhook import WebhookKeyError
from newsflash.state.events import EventStore
from newsflash.state.suppressions import SuppressionStore

NOW = int(START.timestamp())


@pytest.fixture
def keys() -> SendGridKeys:
    return SendGridKeys()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(workspace: Path, keys: SendGridKeys, clock: Clock) -> Iterator[Server]:
    config = load_config(workspace / "config.toml")
    env = {"NEWSFLASH_SECRET": SECRET, "SENDGRID_WEBHOOK_PUBLIC_KEY": keys.public_b64}
    with running(create_app(config, environ=env, clock=clock)) as srv:
        yield srv


def post_events(
    server: Server, keys: SendGridKeys, events: list[dict[str, object]], timestamp: int = NOW
):
    body = json.dumps(events).encode()
    return server.request("POST", "/webhooks/sendgrid", body, keys.headers(body, timestamp))


def stored(workspace: Path) -> dict[str, int]:
    store = EventStore.in_state(workspace / "state")
    try:
        return store.counts()
    finally:
        store.close()


def active(workspace: Path) -> list[tuple[str, str, str]]:
    store = SuppressionStore.in_state(workspace / "state")
    try:
        return [(r.address, r.reason, r.source) for r in store.rows()]
    finally:
        store.close()


def test_a_signed_batch_is_stored_and_answered_200(server, keys, workspace):
    answer = post_events(server, keys, [event(1), event(2, "open"), event(3, "processed")])
    assert answer.status == 200
    assert answer.json()["received"] == 3
    assert stored(workspace) == {"delivered": 1, "open": 1, "processed": 1}


def test_the_same_batch_delivered_three_times_is_stored_once(server, keys, workspace):
    batch = [event(1), event(2, "bounce", type="bounce", email="marc.dubois@example.com")]
    answers = [post_events(server, keys, batch) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert [a.json()["duplicates"] for a in answers] == [0, 2, 2]
    assert stored(workspace) == {"bounce": 1, "delivered": 1}
    assert active(workspace) == [("marc.dubois@example.com", "bounce", "webhook")]


def test_a_bad_signature_is_refused_403_and_nothing_is_stored(server, keys, workspace, caplog):
    body = json.dumps([event(1, "spamreport")]).encode()
    headers = SendGridKeys().headers(body, NOW)  # another key pair: a forger's
    with caplog.at_level(logging.WARNING, "newsflash.serve.webhook"):
        answer = server.request("POST", "/webhooks/sendgrid", body, headers)
    assert answer.status == 403
    assert stored(workspace) == {}
    assert active(workspace) == []
    assert "signature does not verify" in caplog.text


def test_a_body_changed_after_signing_is_refused(server, keys, workspace):
    body = json.dumps([event(1, "delivered")]).encode()
    headers = keys.headers(body, NOW)
    tampered = body.replace(b"delivered", b"spamreport")
    assert server.request("POST", "/webhooks/sendgrid", tampered, headers).status == 403
    assert active(workspace) == []


def test_a_timestamp_older_than_the_window_is_refused_as_a_replay(server, keys, workspace):
    answer = post_events(server, keys, [event(1, "spamreport")], timestamp=NOW - 601)
    assert answer.status == 403
    assert stored(workspace) == {}


def test_a_timestamp_inside_the_window_is_accepted(server, keys, workspace):
    assert post_events(server, keys, [event(1)], timestamp=NOW - 590).status == 200


def test_a_timestamp_far_in_the_future_is_refused(server, keys):
    assert post_events(server, keys, [event(1)], timestamp=NOW + 3600).status == 403


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-signature-headers"),
        pytest.param({"X-Twilio-Email-Event-Webhook-Timestamp": str(NOW)}, id="no-signature"),
        pytest.param(
            {
                "X-Twilio-Email-Event-Webhook-Signature": "AAAA",
                "X-Twilio-Email-Event-Webhook-Timestamp": str(NOW),
            },
            id="signature-not-der",
        ),
        pytest.param(
            {
                "X-Twilio-Email-Event-Webhook-Signature": "%%%not base64%%%",
                "X-Twilio-Email-Event-Webhook-Timestamp": str(NOW),
            },
            id="signature-not-base64",
        ),
        pytest.param(
            {
                "X-Twilio-Email-Event-Webhook-Signature": "AAAA",
                "X-Twilio-Email-Event-Webhook-Timestamp": "1e9",
            },
            id="timestamp-not-digits",
        ),
        pytest.param(
            {
                "X-Twilio-Email-Event-Webhook-Signature": "AAAA",
                "X-Twilio-Email-Event-Webhook-Timestamp": "\u00b2\u00b3",
            },
            id="timestamp-superscript-digits",
        ),
    ],
)
def test_hostile_signature_headers_are_refused_403(server, workspace, headers):
    body = json.dumps([event(1, "spamreport")]).encode()
    answer = server.request("POST", "/webhooks/sendgrid", body, headers)
    assert answer.status == 403
    assert stored(workspace) == {}


def test_malformed_json_is_refused_before_anything_is_stored(server, keys, workspace):
    body = b'[{"event": "bounce", "email": '
    answer = server.request("POST", "/webhooks/sendgrid", body, keys.headers(body, NOW))
    assert answer.status == 400
    assert stored(workspace) == {}


def test_a_signed_body_that_is_not_utf8_is_refused(server, keys, workspace):
    body = b'[{"event": "bounce", "email": "\xff@example.org"}]'
    answer = server.request("POST", "/webhooks/sendgrid", body, keys.headers(body, NOW))
    assert answer.status == 403
    assert stored(workspace) == {}


def test_a_json_object_instead_of_an_array_is_refused_400(server, keys, workspace):
    body = json.dumps(event(1)).encode()
    assert server.request("POST", "/webhooks/sendgrid", body, keys.headers(body, NOW)).status == 400


def test_an_oversized_body_gets_413_from_its_content_length(server, keys, workspace):
    body = b"[" + b" " * (2048 * 1024) + b"]"
    answer = server.request("POST", "/webhooks/sendgrid", body, keys.headers(body, NOW))
    assert answer.status == 413
    assert stored(workspace) == {}


def test_an_oversized_chunked_body_is_cut_off_while_reading(server, workspace):
    """No Content-Length, and a body that never ends: the 413 must come while the client is
    still sending, which only a limit checked during the read can give."""
    import socket

    sock = socket.create_connection((server.host, server.port), timeout=10)
    try:
        sock.sendall(
            b"POST /webhooks/sendgrid HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        for _ in range(40):  # 2.5 MiB, over the 2 MiB limit; the body is never closed
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = sock.recv(200)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413")
    assert stored(workspace) == {}


def test_an_unsigned_body_is_refused_for_its_signature_before_it_is_read_as_json(server):
    answer = server.request("POST", "/webhooks/sendgrid", b"{not json", {"X-Any": "1"})
    assert answer.status == 403


def test_unknown_event_types_and_fields_are_kept_not_fatal(server, keys, workspace):
    odd = event(1, "brand_new_kind", some_field={"nested": [1, 2]}, timestamp="not a number")
    answer = post_events(server, keys, [odd, 42, "text", event(2)])
    assert answer.status == 200
    assert stored(workspace) == {"brand_new_kind": 1, "delivered": 1}
    store = EventStore.in_state(workspace / "state")
    try:
        assert store.raw("ev-000001") == odd
    finally:
        store.close()


def test_an_event_without_an_id_is_still_stored_once(server, keys, workspace):
    anonymous = {"event": "deferred", "email": "anna.keller@example.org", "timestamp": NOW}
    for _ in range(2):
        assert post_events(server, keys, [anonymous]).status == 200
    assert stored(workspace) == {"deferred": 1}


@pytest.mark.parametrize(
    ("kind", "extra", "reason"),
    [
        ("bounce", {"type": "bounce"}, "bounce"),
        ("bounce", {}, "bounce"),
        ("dropped", {"reason": "Bounced Address"}, "bounce"),
        ("dropped", {"reason": "Invalid"}, "invalid"),
        ("dropped", {"reason": "Unsubscribed Address"}, "unsubscribe"),
        ("dropped", {"reason": "Spam Reporting Address"}, "spamreport"),
        ("spamreport", {}, "spamreport"),
        ("unsubscribe", {}, "unsubscribe"),
        ("group_unsubscribe", {"asm_group_id": 42}, "group_unsubscribe"),
    ],
)
def test_events_that_mean_never_again_suppress_the_address(
    server, keys, workspace, kind, extra, reason
):
    answer = post_events(server, keys, [event(1, kind, email="Sofia.Rossi@Example.com", **extra)])
    assert answer.status == 200
    assert active(workspace) == [("sofia.rossi@example.com", reason, "webhook")]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("deferred", {}),
        ("bounce", {"type": "blocked"}),
        ("blocked", {}),
        ("dropped", {"reason": "Invalid SMTPAPI header"}),
        ("dropped", {"reason": "Spam Content (if Spam Checker app is enabled)"}),
        ("delivered", {}),
        ("open", {}),
        ("click", {}),
    ],
)
def test_events_about_the_message_are_counted_not_suppressed(server, keys, workspace, kind, extra):
    assert post_events(server, keys, [event(1, kind, **extra)]).status == 200
    assert active(workspace) == []
    assert stored(workspace) == {kind: 1}


def test_group_resubscribe_lifts_a_group_unsubscribe_and_keeps_its_history(server, keys, workspace):
    email = "lena.virtanen@example.org"
    later = event(2, "group_resubscribe", email=email, timestamp=NOW - 10)
    earlier = event(1, "group_unsubscribe", email=email, timestamp=NOW - 100)
    bounce = event(3, "spamreport", email=email, timestamp=NOW - 50)
    assert post_events(server, keys, [later, earlier, bounce]).status == 200  # out of order
    assert active(workspace) == [(email, "spamreport", "webhook")]
    store = SuppressionStore.in_state(workspace / "state")
    try:
        history = store.rows(include_lifted=True, address=email)
    finally:
        store.close()
    assert [(r.reason, r.lifted_by) for r in history] == [
        ("group_unsubscribe", "webhook"),
        ("spamreport", None),
    ]


def test_a_redelivered_batch_never_undoes_a_lift_the_secretariat_made(server, keys, workspace):
    bounce = event(1, "bounce", type="bounce", email="jonas.berg@example.org")
    assert post_events(server, keys, [bounce]).json()["suppressed"] == 1
    store = SuppressionStore.in_state(workspace / "state")
    try:
        assert store.lift("jonas.berg@example.org", by="by hand") == 1
    finally:
        store.close()
    again = post_events(server, keys, [bounce])  # SendGrid redelivers, hours later
    assert (again.json()["duplicates"], again.json()["suppressed"]) == (1, 0)
    assert active(workspace) == []


def test_a_batch_applied_but_not_recorded_before_a_crash_is_recorded_once_on_redelivery(
    server, keys, workspace
):
    """The crash window: suppressions written, events not yet; SendGrid got no 2xx."""
    store = SuppressionStore.in_state(workspace / "state")
    try:
        store.add("jonas.berg@example.org", "bounce", "webhook")
    finally:
        store.close()
    bounce = event(1, "bounce", type="bounce", email="jonas.berg@example.org")
    answer = post_events(server, keys, [bounce, event(2)])
    assert (answer.json()["duplicates"], answer.json()["suppressed"]) == (0, 0)
    assert stored(workspace) == {"bounce": 1, "delivered": 1}
    assert active(workspace) == [("jonas.berg@example.org", "bounce", "webhook")]


def test_without_a_public_key_the_webhook_answers_503_so_sendgrid_retries(workspace, keys):
    config = load_config(workspace / "config.toml")
    with running(create_app(config, environ={"NEWSFLASH_SECRET": SECRET})) as srv:
        answer = post_events(srv, keys, [event(1)])
        assert srv.request("GET", "/healthz").status == 200
    assert answer.status == 503
    assert stored(workspace) == {}


@pytest.mark.parametrize(
    "key",
    ["not base64 at all!", "QUJD", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"],
    ids=["garbage", "short-base64", "truncated-der"],
)
def test_a_malformed_public_key_is_a_clear_error_naming_the_variable(workspace, key):
    config = load_config(workspace / "config.toml")
    env = {"NEWSFLASH_SECRET": SECRET, "SENDGRID_WEBHOOK_PUBLIC_KEY": key}
    with pytest.raises(WebhookKeyError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        create_app(config, environ=env)


def test_a_public_key_pasted_as_pem_is_accepted(workspace, keys, clock):
    from cryptography.hazmat.primitives import serialization

    pem = (
        keys.private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    config = load_config(workspace / "config.toml")
    env = {"NEWSFLASH_SECRET": SECRET, "SENDGRID_WEBHOOK_PUBLIC_KEY": pem}
    with running(create_app(config, environ=env, clock=clock)) as srv:
        assert post_events(srv, keys, [event(1)]).status == 200


def test_the_window_and_body_limit_come_from_config(workspace, keys, clock):
    path = workspace / "config.toml"
    path.write_text(
        path.read_text().replace(
            "\n[serve]", "\n[serve]\nwebhook_max_age_seconds = 30\nwebhook_max_body_kb = 1\n#", 1
        )
    )
    config = load_config(path)
    env = {"NEWSFLASH_SECRET": SECRET, "SENDGRID_WEBHOOK_PUBLIC_KEY": keys.public_b64}
    with running(create_app(config, environ=env, clock=clock)) as srv:
        assert post_events(srv, keys, [event(1)], timestamp=NOW - 31).status == 403
        assert post_events(srv, keys, [event(n) for n in range(20)]).status == 413
        assert post_events(srv, keys, [event(1)], timestamp=NOW - 29).status == 200
