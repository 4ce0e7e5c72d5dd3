"""The fake SendGrid must be as strict as the real one, or transport tests prove nothing.

Every test drives the fake through the official ``sendgrid`` client library (or, where that
library cannot produce the request, plain ``urllib``), so what is checked here is what our
transport will meet: status codes, error bodies, headers, and the failure modes injected on
purpose.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sendgrid
from fake_sendgrid import (
    DEFAULT_API_KEY,
    FakeSendGrid,
    running_server,
    validate_mail_send,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_http_client.exceptions import (
    BadRequestsError,
    ForbiddenError,
    HTTPError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from sendgrid.helpers.mail import Mail

Body = dict[str, Any]

#: What a client sees when the server closes the connection without answering.
NO_ANSWER = (ConnectionError, http.client.HTTPException, urllib.error.URLError)


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeSendGrid]:
    with running_server() as server:
        yield server


@pytest.fixture
def sg(shared_server: FakeSendGrid) -> FakeSendGrid:
    """The module's server, emptied: starting one per test would cost more than the tests."""
    shared_server.reset()
    return shared_server


def client_for(server: FakeSendGrid, key: str = DEFAULT_API_KEY) -> sendgrid.SendGridAPIClient:
    return sendgrid.SendGridAPIClient(api_key=key, host=server.url)


def post(
    server: FakeSendGrid, body: object, *, key: str = DEFAULT_API_KEY, timeout: float | None = None
) -> Any:
    return client_for(server, key).client.mail.send.post(request_body=body, timeout=timeout)


def valid_body(*recipients: str, **overrides: Any) -> Body:
    """A minimal request SendGrid accepts; keyword arguments replace or add root fields."""
    body: Body = {
        "personalizations": [
            {"to": [{"email": email}]} for email in (recipients or ("alex@example.com",))
        ],
        "from": {"email": "news@example.org", "name": "Newsflash"},
        "subject": "Partner news",
        "content": [
            {"type": "text/plain", "value": "Hello"},
            {"type": "text/html", "value": "<p>Hello</p>"},
        ],
    }
    body.update(overrides)
    return body


def refusal(server: FakeSendGrid, body: object, **kwargs: Any) -> HTTPError:
    """Post ``body`` and return the error the client raised; fail if it was accepted."""
    with pytest.raises(HTTPError) as caught:
        post(server, body, **kwargs)
    return caught.value


def errors_of(error: HTTPError) -> list[dict[str, Any]]:
    parsed: dict[str, Any] = json.loads(error.body)
    return list(parsed["errors"])


def fields_of(error: HTTPError) -> set[str | None]:
    return {item["field"] for item in errors_of(error)}


def assert_refused(server: FakeSendGrid, body: object, *fields: str) -> HTTPError:
    """400 naming (at least) ``fields``, and nothing recorded."""
    error = refusal(server, body)
    assert error.status_code == 400, error.body
    assert isinstance(error, BadRequestsError)
    assert set(fields) <= fields_of(error), errors_of(error)
    assert server.accepted_requests == []
    return error


def raw_post(
    server: FakeSendGrid, data: bytes, headers: dict[str, str]
) -> tuple[int, bytes, dict[str, str]]:
    """For requests the sendgrid library cannot produce (malformed JSON, gzip)."""
    request = urllib.request.Request(
        server.url + "/v3/mail/send",
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


# ---- acceptance ------------------------------------------------------------------------------


def test_valid_request_is_accepted_with_a_message_id(sg: FakeSendGrid) -> None:
    body = valid_body("alex@example.com")

    response = post(sg, body)

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22
    [accepted] = sg.accepted_requests
    assert accepted.body == body
    assert accepted.message_id == message_id
    assert accepted.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert accepted.sandbox is False
    assert accepted.answered is True
    assert sg.all_recipients() == ["alex@example.com"]


def test_message_ids_are_unique_across_requests(sg: FakeSendGrid) -> None:
    ids = {post(sg, valid_body()).headers["X-Message-Id"] for _ in range(20)}

    assert len(ids) == 20


def test_body_built_by_the_sendgrid_mail_helper_is_accepted(sg: FakeSendGrid) -> None:
    mail = Mail(
        from_email=("news@example.org", "Newsflash"),
        to_emails=["alex@example.com", "bola@example.com"],
        subject="Partner news",
        plain_text_content="Hello",
        html_content="<p>Hello</p>",
    )

    response = client_for(sg).send(mail)

    assert response.status_code == 202
    assert sg.all_recipients() == ["alex@example.com", "bola@example.com"]


def test_all_recipients_lists_to_addresses_in_order_across_requests(sg: FakeSendGrid) -> None:
    first = valid_body("a@example.com", "b@example.com")
    first["personalizations"][0]["cc"] = [{"email": "cc@example.com"}]
    first["personalizations"][1]["bcc"] = [{"email": "bcc@example.com"}]
    post(sg, first)
    post(sg, valid_body("c@example.com"))

    assert sg.all_recipients() == ["a@example.com", "b@example.com", "c@example.com"]


def test_exactly_1000_personalizations_are_accepted(sg: FakeSendGrid) -> None:
    recipients = [f"partner{i}@example.com" for i in range(1000)]

    response = post(sg, valid_body(*recipients))

    assert response.status_code == 202
    assert sg.all_recipients() == recipients


def test_subject_may_come_from_every_personalization_instead_of_the_root(
    sg: FakeSendGrid,
) -> None:
    body = valid_body("a@example.com", "b@example.com")
    del body["subject"]
    for personalization in body["personalizations"]:
        personalization["subject"] = "Own subject"

    assert post(sg, body).status_code == 202


def test_subject_and_content_may_be_left_to_a_template(sg: FakeSendGrid) -> None:
    body = valid_body(template_id="d-0123456789abcdef")
    del body["subject"], body["content"]
    body["personalizations"][0]["dynamic_template_data"] = {"name": "Alex"}

    assert post(sg, body).status_code == 202


def test_full_featured_request_is_accepted(sg: FakeSendGrid) -> None:
    body = valid_body(
        reply_to={"email": "editor@example.org", "name": "Editor"},
        headers={"List-Unsubscribe": "<mailto:unsub@example.org>"},
        categories=["newsletter", "2024-05"],
        custom_args={"issue": "2024-05"},
        send_at=int(time.time()) + 3600,
        asm={"group_id": 42, "groups_to_display": [42]},
        ip_pool_name="marketing",
        attachments=[
            {
                "content": base64.b64encode(b"%PDF-1.4").decode(),
                "filename": "issue.pdf",
                "type": "application/pdf",
                "disposition": "attachment",
            },
            {
                "content": base64.b64encode(b"GIF89a").decode(),
                "filename": "logo.gif",
                "type": "image/gif",
                "disposition": "inline",
                "content_id": "logo",
            },
        ],
        mail_settings={"footer": {"enable": False}, "bypass_list_management": {"enable": False}},
        tracking_settings={"click_tracking": {"enable": True, "enable_text": False}},
    )
    body["personalizations"][0].update(
        {
            "cc": [{"email": "cc@example.com", "name": "Cc"}],
            "bcc": [{"email": "bcc@example.com"}],
            "custom_args": {"recipient": "1"},
            "substitutions": {"-name-": "Alex"},
            "headers": {"X-Partner": "acme"},
        }
    )

    assert post(sg, body).status_code == 202


# ---- validation ------------------------------------------------------------------------------


def test_missing_required_fields_are_all_reported_at_once(sg: FakeSendGrid) -> None:
    error = assert_refused(sg, {}, "personalizations", "from.email", "subject", "content")

    for item in errors_of(error):
        assert set(item) == {"message", "field", "help"}
        assert item["message"]
        assert item["help"].startswith("http://sendgrid.com/docs/")


def test_errors_name_the_exact_field(sg: FakeSendGrid) -> None:
    body = valid_body("alex@example.com", "not-an-address")

    error = assert_refused(sg, body, "personalizations.1.to.0.email")

    assert len(errors_of(error)) == 1


def test_personalization_without_to_is_refused(sg: FakeSendGrid) -> None:
    body = valid_body()
    body["personalizations"].append({"cc": [{"email": "cc@example.com"}]})

    assert_refused(sg, body, "personalizations.1.to")


def test_empty_personalizations_are_refused(sg: FakeSendGrid) -> None:
    assert_refused(sg, valid_body(personalizations=[]), "personalizations")


def test_more_than_1000_personalizations_is_refused(sg: FakeSendGrid) -> None:
    body = valid_body(*(f"partner{i}@example.com" for i in range(1001)))

    error = assert_refused(sg, body, "personalizations")

    assert any("1000" in item["message"] for item in errors_of(error))


def test_more_than_1000_recipients_in_one_request_is_refused(sg: FakeSendGrid) -> None:
    body = valid_body("first@example.com")
    personalization = body["personalizations"][0]
    personalization["cc"] = [{"email": f"cc{i}@example.com"} for i in range(500)]
    personalization["bcc"] = [{"email": f"bcc{i}@example.com"} for i in range(500)]

    error = assert_refused(sg, body, "personalizations")

    assert any("1001" in item["message"] for item in errors_of(error))


@pytest.mark.parametrize(
    ("personalizations", "duplicate_field"),
    [
        pytest.param(
            [{"to": [{"email": "alex@example.com"}, {"email": "alex@example.com"}]}],
            "personalizations.0.to.1.email",
            id="same-to-list",
        ),
        pytest.param(
            [{"to": [{"email": "alex@example.com"}], "bcc": [{"email": "ALEX@Example.com"}]}],
            "personalizations.0.bcc.0.email",
            id="to-and-bcc-other-case",
        ),
        pytest.param(
            [{"to": [{"email": "alex@example.com"}]}, {"to": [{"email": "Alex@example.com"}]}],
            "personalizations.1.to.0.email",
            id="two-personalizations",
        ),
        pytest.param(
            [
                {"to": [{"email": "bola@example.com"}], "cc": [{"email": "alex@example.com"}]},
                {"to": [{"email": "alex@example.com"}]},
            ],
            "personalizations.1.to.0.email",
            id="cc-then-to",
        ),
    ],
)
def test_address_twice_in_one_request_is_refused(
    sg: FakeSendGrid, personalizations: list[Body], duplicate_field: str
) -> None:
    assert_refused(sg, valid_body(personalizations=personalizations), duplicate_field)


@pytest.mark.parametrize(
    "address",
    ["plainaddress", "@example.com", "alex@", "alex@example", "alex@@example.com",
     "Alex <alex@example.com>", "alex@example.com, bola@example.com", "alex @example.com",
     "alex@example..com", ""],
)  # fmt: skip
def test_malformed_email_address_is_refused(sg: FakeSendGrid, address: str) -> None:
    assert_refused(sg, valid_body(address), "personalizations.0.to.0.email")


def test_from_address_must_be_valid(sg: FakeSendGrid) -> None:
    assert_refused(sg, valid_body(**{"from": {"email": "newsflash"}}), "from.email")
    assert_refused(sg, valid_body(**{"from": "news@example.org"}), "from.email")


def test_html_before_plain_text_is_refused(sg: FakeSendGrid) -> None:
    content = [
        {"type": "text/html", "value": "<p>Hello</p>"},
        {"type": "text/plain", "value": "Hello"},
    ]

    assert_refused(sg, valid_body(content=content), "content.1.type")


def test_other_content_before_html_is_refused(sg: FakeSendGrid) -> None:
    content = [
        {"type": "text/calendar", "value": "BEGIN:VCALENDAR"},
        {"type": "text/html", "value": "<p>Hello</p>"},
    ]

    assert_refused(sg, valid_body(content=content), "content.1.type")


def test_plain_then_html_then_other_content_is_accepted(sg: FakeSendGrid) -> None:
    content = [
        {"type": "text/plain", "value": "Hello"},
        {"type": "text/html", "value": "<p>Hello</p>"},
        {"type": "text/calendar", "value": "BEGIN:VCALENDAR"},
    ]

    assert post(sg, valid_body(content=content)).status_code == 202


def test_html_only_content_is_accepted(sg: FakeSendGrid) -> None:
    content = [{"type": "text/html", "value": "<p>Hello</p>"}]

    assert post(sg, valid_body(content=content)).status_code == 202


def test_content_type_given_twice_or_empty_value_is_refused(sg: FakeSendGrid) -> None:
    twice = [{"type": "text/plain", "value": "a"}, {"type": "text/plain", "value": "b"}]
    assert_refused(sg, valid_body(content=twice), "content.1.type")
    empty = [{"type": "text/plain", "value": ""}]
    assert_refused(sg, valid_body(content=empty), "content.0.value")


@pytest.mark.parametrize(
    "name",
    ["x-sg-id", "X-SG-EID", "Received", "DKIM-Signature", "content-type",
     "Content-Transfer-Encoding", "to", "FROM", "Subject", "reply-to", "Cc", "bcc"],
)  # fmt: skip
def test_reserved_header_is_refused(sg: FakeSendGrid, name: str) -> None:
    assert_refused(sg, valid_body(headers={name: "x"}), f"headers.{name}")

    body = valid_body()
    body["personalizations"][0]["headers"] = {name: "x"}
    assert_refused(sg, body, f"personalizations.0.headers.{name}")


def test_header_values_must_be_strings(sg: FakeSendGrid) -> None:
    assert_refused(sg, valid_body(headers={"X-Issue": 5}), "headers.X-Issue")
    assert_refused(sg, valid_body(headers=["X-Issue: 5"]), "headers")


def test_categories_over_ten_or_repeated_are_refused(sg: FakeSendGrid) -> None:
    eleven = [f"category-{i}" for i in range(11)]
    assert_refused(sg, valid_body(categories=eleven), "categories")

    assert_refused(sg, valid_body(categories=["news", "partners", "news"]), "categories.2")

    assert post(sg, valid_body(categories=eleven[:10])).status_code == 202


def test_category_longer_than_255_characters_or_not_a_string_is_refused(
    sg: FakeSendGrid,
) -> None:
    assert_refused(sg, valid_body(categories=["x" * 256]), "categories.0")
    assert_refused(sg, valid_body(categories=["ok", 7]), "categories.1")
    assert post(sg, valid_body(categories=["x" * 255])).status_code == 202


def test_custom_args_values_must_be_strings(sg: FakeSendGrid) -> None:
    assert_refused(sg, valid_body(custom_args={"issue": 5}), "custom_args.issue")

    body = valid_body()
    body["personalizations"][0]["custom_args"] = {"partner_id": 17}
    assert_refused(sg, body, "personalizations.0.custom_args.partner_id")


def test_custom_args_must_be_an_object(sg: FakeSendGrid) -> None:
    assert_refused(sg, valid_body(custom_args="issue=5"), "custom_args")


def test_custom_args_over_10000_bytes_in_total_are_refused(sg: FakeSendGrid) -> None:
    assert_refused(sg, valid_body(custom_args={"big": "x" * 10_000}), "custom_args")

    # Each half fits, but the message level plus the personalization does not.
    body = valid_body(custom_args={"a": "x" * 6_000})
    body["personalizations"][0]["custom_args"] = {"b": "y" * 6_000}
    assert_refused(sg, body, "personalizations.0.custom_args")

    # A personalization overriding a message-level key replaces it rather than adding to it.
    body = valid_body(custom_args={"a": "x" * 6_000})
    body["personalizations"][0]["custom_args"] = {"a": "y" * 6_000}
    assert post(sg, body).status_code == 202


def test_substitution_values_must_be_strings(sg: FakeSendGrid) -> None:
    body = valid_body()
    body["personalizations"][0]["substitutions"] = {"-count-": 3}

    assert_refused(sg, body, "personalizations.0.substitutions.-count-")


def test_substitutions_with_a_dynamic_template_are_refused(sg: FakeSendGrid) -> None:
    body = valid_body(template_id="d-0123456789abcdef")
    body["personalizations"][0]["substitutions"] = {"-name-": "Alex"}

    assert_refused(sg, body, "personalizations.0.substitutions")


@pytest.mark.parametrize("group_id", ["42", 4.2, True, None])
def test_asm_group_id_must_be_an_integer(sg: FakeSendGrid, group_id: object) -> None:
    assert_refused(sg, valid_body(asm={"group_id": group_id}), "asm.group_id")


def test_asm_without_group_id_is_refused(sg: FakeSendGrid) -> None:
    assert_refused(sg, valid_body(asm={"groups_to_display": [1]}), "asm.group_id")


@pytest.mark.parametrize(
    "reply_to",
    ["editor@example.org", {"name": "Editor"}, {"email": "editor"}, [{"email": "e@example.org"}]],
)
def test_reply_to_must_be_one_address_object(sg: FakeSendGrid, reply_to: object) -> None:
    error = assert_refused(sg, valid_body(reply_to=reply_to))

    assert all(str(item["field"]).startswith("reply_to") for item in errors_of(error))


def test_reply_to_and_reply_to_list_together_are_refused(sg: FakeSendGrid) -> None:
    body = valid_body(
        reply_to={"email": "a@example.org"}, reply_to_list=[{"email": "b@example.org"}]
    )

    assert_refused(sg, body, "reply_to_list")


def test_send_at_more_than_72_hours_ahead_is_refused(sg: FakeSendGrid) -> None:
    too_late = int(time.time()) + 73 * 3600
    assert_refused(sg, valid_body(send_at=too_late), "send_at")
    assert_refused(sg, valid_body(send_at="tomorrow"), "send_at")

    body = valid_body()
    body["personalizations"][0]["send_at"] = too_late
    assert_refused(sg, body, "personalizations.0.send_at")


def test_attachment_content_must_be_base64_and_inline_needs_content_id(
    sg: FakeSendGrid,
) -> None:
    not_base64 = [{"content": "not base64!", "filename": "a.txt"}]
    assert_refused(sg, valid_body(attachments=not_base64), "attachments.0.content")

    inline = [{"content": "R0lGODlh", "filename": "a.gif", "disposition": "inline"}]
    assert_refused(sg, valid_body(attachments=inline), "attachments.0.content_id")

    no_name = [{"content": "R0lGODlh"}]
    assert_refused(sg, valid_body(attachments=no_name), "attachments.0.filename")


def test_mail_settings_must_be_typed(sg: FakeSendGrid) -> None:
    settings = {"sandbox_mode": {"enable": "yes"}}

    assert_refused(sg, valid_body(mail_settings=settings), "mail_settings.sandbox_mode.enable")


def test_recipient_name_with_unquoted_comma_is_refused_unless_lenient(sg: FakeSendGrid) -> None:
    body = valid_body()
    body["personalizations"][0]["to"][0]["name"] = "Doe, Jane"
    assert_refused(sg, body, "personalizations.0.to.0.name")

    body["personalizations"][0]["to"][0]["name"] = '"Doe, Jane"'
    assert post(sg, body).status_code == 202

    with running_server(strict_names=False) as lenient:
        body["personalizations"][0]["to"][0]["name"] = "Doe, Jane"
        assert post(lenient, body).status_code == 202


def test_nan_is_not_json_and_is_refused(sg: FakeSendGrid) -> None:
    error = refusal(sg, valid_body(asm={"group_id": float("nan")}))

    assert error.status_code == 400


def test_malformed_json_is_refused_with_400(sg: FakeSendGrid) -> None:
    status, body, _ = raw_post(sg, b'{"personalizations": [', {"Content-Type": "application/json"})

    assert status == 400
    assert json.loads(body)["errors"][0]["message"]
    assert sg.accepted_requests == []


def test_json_that_is_not_an_object_is_refused(sg: FakeSendGrid) -> None:
    assert refusal(sg, ["not", "an", "object"]).status_code == 400


def test_non_json_content_type_is_refused_with_415(sg: FakeSendGrid) -> None:
    client = client_for(sg)
    with pytest.raises(UnsupportedMediaTypeError):
        client.client.mail.send.post(
            request_body=json.dumps(valid_body()), request_headers={"Content-Type": "text/plain"}
        )


def test_gzip_compressed_body_is_accepted(sg: FakeSendGrid) -> None:
    data = gzip.compress(json.dumps(valid_body()).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

    status, _, response_headers = raw_post(sg, data, headers)

    assert status == 202
    assert "X-Message-Id" in response_headers
    assert sg.all_recipients() == ["alex@example.com"]


def test_body_over_the_size_limit_gets_413() -> None:
    with running_server(max_body_bytes=2_000) as small:
        body = valid_body(content=[{"type": "text/plain", "value": "x" * 3_000}])

        error = refusal(small, body)

        assert isinstance(error, PayloadTooLargeError)
        assert error.status_code == 413
        assert small.accepted_requests == []
        assert post(small, valid_body()).status_code == 202


def test_default_size_limit_is_30_megabytes(sg: FakeSendGrid) -> None:
    assert sg.max_body_bytes == 30_000_000


# ---- routing and authentication -------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["SG.wrong-key", "", "SG.test-key-but-longer"], ids=["wrong", "empty", "prefix"]
)
def test_wrong_key_gets_401(sg: FakeSendGrid, key: str) -> None:
    error = refusal(sg, valid_body(), key=key)

    assert isinstance(error, UnauthorizedError)
    assert json.loads(error.body) == {
        "errors": [
            {
                "message": "The provided authorization grant is invalid, expired, or revoked",
                "field": None,
                "help": None,
            }
        ]
    }
    assert sg.accepted_requests == []


def test_missing_or_non_bearer_authorization_gets_401(sg: FakeSendGrid) -> None:
    data = json.dumps(valid_body()).encode()
    for authorization in ("", f"Basic {DEFAULT_API_KEY}", DEFAULT_API_KEY):
        request = urllib.request.Request(
            sg.url + "/v3/mail/send",
            data=data,
            headers={"Content-Type": "application/json", "Authorization": authorization},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 401


def test_configured_keys_replace_the_default_key() -> None:
    with running_server(api_keys={"SG.live-like"}) as server:
        assert post(server, valid_body(), key="SG.live-like").status_code == 202
        assert refusal(server, valid_body(), key=DEFAULT_API_KEY).status_code == 401


def test_key_without_mail_send_scope_gets_403() -> None:
    with running_server(keys_without_scope={"SG.read-only"}) as server:
        error = refusal(server, valid_body(), key="SG.read-only")

        assert isinstance(error, ForbiddenError)
        assert server.accepted_requests == []


def test_unknown_path_gets_404_json(sg: FakeSendGrid) -> None:
    with pytest.raises(NotFoundError) as caught:
        client_for(sg).client.mail.batch.post()

    assert json.loads(caught.value.body)["errors"][0]["message"] == "not found"


def test_get_on_mail_send_gets_405(sg: FakeSendGrid) -> None:
    with pytest.raises(MethodNotAllowedError):
        client_for(sg).client.mail.send.get()


# ---- rate limiting ---------------------------------------------------------------------------


class ManualClock:
    """A clock the test moves, so rate-limit windows do not depend on the machine's speed."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rate_limit_answers_429_with_reset_header() -> None:
    clock = ManualClock()
    with running_server(rate_limit=(2, 60), clock=clock) as server:
        first = post(server, valid_body("a@example.com"))
        post(server, valid_body("b@example.com"))

        error = refusal(server, valid_body("c@example.com"))

        assert first.headers["X-RateLimit-Limit"] == "2"
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert isinstance(error, TooManyRequestsError)
        assert json.loads(error.body) == {
            "errors": [{"field": None, "message": "too many requests"}]
        }
        assert error.headers["X-RateLimit-Limit"] == "2"
        assert error.headers["X-RateLimit-Remaining"] == "0"
        assert error.headers["X-RateLimit-Reset"] == str(int(clock.now) + 60)
        assert server.all_recipients() == ["a@example.com", "b@example.com"]


def test_rate_limit_window_reopens_at_the_reset_time() -> None:
    clock = ManualClock()
    with running_server(rate_limit=(1, 10), clock=clock) as server:
        post(server, valid_body("a@example.com"))
        assert refusal(server, valid_body("b@example.com")).status_code == 429

        clock.now += 10

        assert post(server, valid_body("b@example.com")).status_code == 202


def test_every_response_carries_rate_limit_headers(sg: FakeSendGrid) -> None:
    responses = [post(sg, valid_body()).headers]
    responses.append(refusal(sg, {}).headers)
    responses.append(refusal(sg, valid_body(), key="SG.wrong").headers)
    with pytest.raises(NotFoundError) as caught:
        client_for(sg).client.mail.batch.post()
    responses.append(caught.value.headers)

    for headers in responses:
        assert int(headers["X-RateLimit-Limit"]) > 0
        assert int(headers["X-RateLimit-Remaining"]) >= 0
        assert int(headers["X-RateLimit-Reset"]) >= int(time.time())


# ---- sandbox ---------------------------------------------------------------------------------


def test_sandbox_mode_answers_200_and_records_nothing_delivered(sg: FakeSendGrid) -> None:
    body = valid_body(mail_settings={"sandbox_mode": {"enable": True}})

    response = post(sg, body)

    assert response.status_code == 200
    assert response.body == b""
    assert sg.all_recipients() == []
    assert sg.delivered_requests == []
    [sandboxed] = sg.sandbox_requests
    assert sandboxed.sandbox is True
    assert sandboxed.body == body


def test_sandbox_mode_still_validates_the_request(sg: FakeSendGrid) -> None:
    body = valid_body(mail_settings={"sandbox_mode": {"enable": True}}, categories=["a", "a"])

    assert_refused(sg, body, "categories.1")


# ---- injected faults -------------------------------------------------------------------------


def test_injected_500_answers_500_once(sg: FakeSendGrid) -> None:
    sg.inject("500")

    error = refusal(sg, valid_body())
    retried = post(sg, valid_body())

    assert isinstance(error, InternalServerError)
    assert error.status_code == 500
    assert retried.status_code == 202
    assert len(sg.accepted_requests) == 1


@pytest.mark.parametrize(
    ("kind", "exception"),
    [
        ("400", BadRequestsError),
        ("401", UnauthorizedError),
        ("503", ServiceUnavailableError),
        ("502", HTTPError),
    ],
)
def test_injected_status_answers_that_status_and_records_nothing(
    sg: FakeSendGrid, kind: str, exception: type[HTTPError]
) -> None:
    sg.inject(kind)

    error = refusal(sg, valid_body())

    assert isinstance(error, exception)
    assert error.status_code == int(kind)
    assert json.loads(error.body)["errors"]
    assert sg.accepted_requests == []


def test_injected_429_carries_reset_header(sg: FakeSendGrid) -> None:
    sg.inject("429", reset_in=30)

    error = refusal(sg, valid_body())

    assert isinstance(error, TooManyRequestsError)
    assert error.headers["X-RateLimit-Remaining"] == "0"
    reset = int(error.headers["X-RateLimit-Reset"])
    assert time.time() + 28 <= reset <= time.time() + 32
    assert post(sg, valid_body()).status_code == 202


def test_faults_are_consumed_in_order_one_per_request(sg: FakeSendGrid) -> None:
    sg.inject("503")
    sg.inject("500", times=2)
    assert sg.pending_faults == ["503", "500", "500"]

    statuses = []
    for _ in range(4):
        try:
            statuses.append(post(sg, valid_body()).status_code)
        except HTTPError as error:
            statuses.append(error.status_code)

    assert statuses == [503, 500, 500, 202]
    assert sg.pending_faults == []


def test_injected_hang_makes_the_client_time_out_and_records_nothing(sg: FakeSendGrid) -> None:
    sg.inject("hang", seconds=3)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        post(sg, valid_body(), timeout=0.3)

    assert time.monotonic() - started < 2
    assert sg.accepted_requests == []
    assert post(sg, valid_body()).status_code == 202


def test_injected_hang_answers_504_to_a_patient_client(sg: FakeSendGrid) -> None:
    sg.inject("hang", seconds=0.2)

    error = refusal(sg, valid_body(), timeout=5)

    assert error.status_code == 504
    assert sg.accepted_requests == []


def test_injected_slow_answers_late_but_accepts(sg: FakeSendGrid) -> None:
    sg.inject("slow", seconds=0.3)

    started = time.monotonic()
    response = post(sg, valid_body(), timeout=5)

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 202


def test_injected_drop_closes_without_answer_and_records_nothing(sg: FakeSendGrid) -> None:
    sg.inject("drop")

    with pytest.raises(NO_ANSWER):
        post(sg, valid_body(), timeout=5)

    assert sg.accepted_requests == []
    assert sg.request_log[-1].status is None
    assert sg.request_log[-1].fault == "drop"


def test_accept_then_drop_records_the_mail_but_the_client_gets_no_answer(
    sg: FakeSendGrid,
) -> None:
    sg.inject("accept_then_drop")

    with pytest.raises(NO_ANSWER):
        post(sg, valid_body("alex@example.com"), timeout=5)

    [accepted] = sg.accepted_requests
    assert accepted.answered is False
    assert accepted.message_id
    assert sg.all_recipients() == ["alex@example.com"]
    # A naive retry delivers the newsletter twice; that is what this fault exists to expose.
    post(sg, valid_body("alex@example.com"))
    assert sg.all_recipients() == ["alex@example.com", "alex@example.com"]


def test_accept_then_hang_records_the_mail_before_the_client_times_out(sg: FakeSendGrid) -> None:
    sg.inject("accept_then_hang", seconds=3)

    with pytest.raises(TimeoutError):
        post(sg, valid_body("alex@example.com"), timeout=0.3)

    assert sg.all_recipients() == ["alex@example.com"]
    assert sg.accepted_requests[0].answered is False


def test_accept_then_drop_still_refuses_an_invalid_request(sg: FakeSendGrid) -> None:
    sg.inject("accept_then_drop")

    assert refusal(sg, {}).status_code == 400
    assert sg.accepted_requests == []
    assert sg.pending_faults == []


def raw_exchange(server: FakeSendGrid, body: object, path: str = "/v3/mail/send") -> bytes:
    """Everything the server writes back, byte for byte (interim responses included)."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {DEFAULT_API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(head + data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_injected_redirect_points_at_the_portal_and_records_nothing(
    sg: FakeSendGrid, status: int
) -> None:
    sg.inject(status)

    answer = raw_exchange(sg, valid_body())

    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith(f"HTTP/1.0 {status} ")
    assert f"Location: {sg.url}/portal" in head
    assert sg.accepted_requests == [] and sg.pending_faults == []
    assert [r.status for r in sg.request_log] == [status]


def test_injected_redirect_goes_where_it_is_told(sg: FakeSendGrid) -> None:
    sg.inject(302, location="https://login.example.net/hotspot?next=api")

    answer = raw_exchange(sg, valid_body())

    assert b"Location: https://login.example.net/hotspot?next=api\r\n" in answer


def test_the_sendgrid_library_alone_follows_a_302_as_a_get_and_gets_the_portals_200(
    sg: FakeSendGrid,
) -> None:
    """The pitfall the transport must guard against, reproduced: a 302 becomes a 200."""
    sg.inject(302)

    response = post(sg, valid_body())

    assert response.status_code == 200 and b"log in" in response.body
    assert sg.accepted_requests == []
    followed = sg.request_log[-1]
    assert (followed.method, followed.path, followed.status) == ("GET", "/portal", 200)
    assert followed.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"  # the key, leaked


@pytest.mark.parametrize("status", [200, 201, 203, 204, 206])
@pytest.mark.parametrize("sandbox", [False, True])
def test_an_injected_2xx_answers_that_status_and_records_nothing(
    sg: FakeSendGrid, status: int, sandbox: bool
) -> None:
    sg.inject(status)
    body = valid_body()
    if sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}

    response = post(sg, body)

    assert response.status_code == status
    assert "X-Message-Id" not in response.headers
    assert (response.body == b"") is (status == 204)
    assert sg.accepted_requests == []


def test_an_injected_300_or_304_answers_that_status(sg: FakeSendGrid) -> None:
    for status in (300, 304):
        sg.inject(status)
        assert raw_exchange(sg, valid_body()).startswith(f"HTTP/1.0 {status} ".encode())
    assert sg.accepted_requests == []


@pytest.mark.parametrize("status", [102, 103])
def test_an_injected_1xx_comes_just_before_the_final_answer_of_an_accepted_request(
    sg: FakeSendGrid, status: int
) -> None:
    sg.inject(status)

    answer = raw_exchange(sg, valid_body("alex@example.com"))

    assert answer.startswith(f"HTTP/1.0 {status} ".encode())
    assert b"\r\n\r\nHTTP/1.0 202 Accepted\r\n" in answer
    assert sg.all_recipients() == ["alex@example.com"]


def test_the_sendgrid_library_takes_a_103_for_the_answer_though_the_mail_was_accepted(
    sg: FakeSendGrid,
) -> None:
    sg.inject(103)

    error = refusal(sg, valid_body("alex@example.com"))

    assert error.status_code == 103
    assert sg.all_recipients() == ["alex@example.com"]


def test_the_sendgrid_library_skips_an_injected_100_continue(sg: FakeSendGrid) -> None:
    sg.inject(100)

    assert post(sg, valid_body()).status_code == 202
    assert len(sg.delivered_requests) == 1


def test_the_portal_answers_200_with_a_page_to_any_method(sg: FakeSendGrid) -> None:
    for method in ("GET", "POST"):
        request = urllib.request.Request(sg.url + "/portal", data=b"{}", method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200 and b"log in" in response.read()
    assert [(r.method, r.status) for r in sg.request_log] == [("GET", 200), ("POST", 200)]


@pytest.mark.parametrize("kind", ["explode", "099", "0302", 600, 99, "-200", "2e2"])
def test_inject_rejects_unknown_kinds(sg: FakeSendGrid, kind: str | int) -> None:
    with pytest.raises(ValueError):
        sg.inject(kind)


# ---- bookkeeping -----------------------------------------------------------------------------


def test_request_log_counts_every_attempt(sg: FakeSendGrid) -> None:
    sg.inject("503")
    refusal(sg, valid_body())
    refusal(sg, {})
    post(sg, valid_body())

    assert [(entry.status, entry.fault) for entry in sg.request_log] == [
        (503, "503"),
        (400, None),
        (202, None),
    ]
    assert sg.request_log[1].errors


def test_reset_forgets_requests_and_faults(sg: FakeSendGrid) -> None:
    post(sg, valid_body())
    sg.inject("500")

    sg.reset()

    assert sg.accepted_requests == []
    assert sg.request_log == []
    assert sg.pending_faults == []
    assert post(sg, valid_body()).status_code == 202


def test_concurrent_requests_are_all_recorded(sg: FakeSendGrid) -> None:
    def send(worker: int) -> None:
        for i in range(10):
            post(sg, valid_body(f"w{worker}-{i}@example.com"))

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(sg.accepted_requests) == 80
    assert len(set(sg.all_recipients())) == 80
    assert len({request.message_id for request in sg.accepted_requests}) == 80


def test_a_1000_personalization_request_is_validated_quickly() -> None:
    body = valid_body(*(f"partner{i}@example.com" for i in range(1000)))
    for i, personalization in enumerate(body["personalizations"]):
        personalization["substitutions"] = {"-name-": f"Partner {i}"}
        personalization["custom_args"] = {"partner": str(i)}

    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert validate_mail_send(body) == []
        timings.append(time.perf_counter() - started)

    assert min(timings) < 0.05  # benchmarks budget 20 ms of server time per request


def test_script_prints_its_url_and_serves_until_terminated() -> None:
    script = Path(__file__).with_name("fake_sendgrid.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = sendgrid.SendGridAPIClient(api_key=DEFAULT_API_KEY, host=url)
        assert client.send(valid_body()).status_code == 202
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


# ---- properties ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
fields = st.sampled_from(
    ["personalizations", "from", "subject", "content", "categories", "custom_args", "headers",
     "asm", "reply_to", "reply_to_list", "attachments", "send_at", "template_id",
     "mail_settings", "tracking_settings", "ip_pool_name", "batch_id"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(field_name=fields, value=json_values)
def test_validation_never_crashes_on_any_json_in_any_field(field_name: str, value: object) -> None:
    """Whatever a buggy client sends, the fake answers 4xx and never 500s itself."""
    body = valid_body(**{field_name: value})
    errors = validate_mail_send(body)

    for item in errors:
        assert isinstance(item["message"], str)
        assert item["field"] is None or isinstance(item["field"], str)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_validation_never_crashes_on_any_personalization(value: object) -> None:
    validate_mail_send(valid_body(personalizations=[value]))
    validate_mail_send(valid_body(personalizations=[{"to": [value]}]))


local_parts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=10)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    locals_=st.lists(local_parts, min_size=1, max_size=30, unique_by=str.lower),
    split=st.integers(min_value=1, max_value=30),
)
def test_distinct_recipients_are_accepted_and_recorded_in_order(
    shared_server: FakeSendGrid, locals_: list[str], split: int
) -> None:
    shared_server.reset()
    addresses = [f"{local}@example.com" for local in locals_]
    personalizations = [
        {"to": [{"email": email} for email in addresses[start : start + split]]}
        for start in range(0, len(addresses), split)
    ]

    post(shared_server, valid_body(personalizations=personalizations))

    assert shared_server.all_recipients() == addresses


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    locals_=st.lists(local_parts, min_size=1, max_size=20, unique_by=str.lower),
    data=st.data(),
)
def test_any_repeated_address_is_refused_whatever_its_case(
    shared_server: FakeSendGrid, locals_: list[str], data: st.DataObject
) -> None:
    shared_server.reset()
    addresses = [f"{local}@example.com" for local in locals_]
    repeated = data.draw(st.sampled_from(addresses)).upper()
    position = data.draw(st.integers(min_value=0, max_value=len(addresses)))
    addresses.insert(position, repeated)
    body = valid_body(*addresses)

    error = refusal(shared_server, body)

    assert error.status_code == 400
    assert any("unique" in item["message"] for item in errors_of(error))
    assert shared_server.accepted_requests == []


def test_latency_holds_every_mail_send_answer_for_that_long() -> None:
    with running_server(latency=0.3) as server:
        start = time.monotonic()
        answers = [post(server, valid_body(f"p{n}@example.org")).status_code for n in range(2)]
        elapsed = time.monotonic() - start
        assert answers == [202, 202]
        assert elapsed >= 0.6  # each of the two answers waited its 0.3 s
        assert len(server.accepted_requests) == 2


def test_a_fault_injected_at_once_is_answered_without_the_latency() -> None:
    with running_server(latency=0.5) as server:
        server.inject(400, at_once=True)
        start = time.monotonic()
        first = refusal(server, valid_body("p1@example.org")).status_code
        quick = time.monotonic() - start
        second = post(server, valid_body("p2@example.org")).status_code
        assert (first, second) == (400, 202)
        assert quick < 0.5  # the refusal did not wait; the next answer did
        assert time.monotonic() - start >= 0.5
        assert len(server.accepted_requests) == 1
