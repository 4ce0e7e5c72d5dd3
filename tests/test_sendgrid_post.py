"""How a Mail Send body leaves: what the official library would post, and nothing in the logs.

`Delivery` posts through the library's client (`post_json`), not its `post(request_body=...)`,
whose debug lines format the whole body (and the headers, the API key among them) into strings
on every request even with the log off. Against the loopback fake SendGrid.
"""

from __future__ import annotations

import logging

import pytest
from fake_sendgrid import DEFAULT_API_KEY, FakeSendGrid
from sendgrid import SendGridAPIClient

from newsflash.transports.retries import Policy
from newsflash.transports.sendgrid_delivery import Delivery


def _body(subject: str) -> dict[str, object]:
    return {
        "personalizations": [{"to": [{"email": "alex@example.com", "name": "Alex Ä"}]}],
        "from": {"email": "news@example.org", "name": "Newsflash"},
        "subject": subject,
        "content": [{"type": "text/plain", "value": "Hello, é \u2028 </script>"}],
    }


def test_a_delivery_posts_the_same_request_as_the_librarys_own_post(sg: FakeSendGrid) -> None:
    library = SendGridAPIClient(api_key=DEFAULT_API_KEY, host=sg.url)
    library.client.mail.send.post(request_body=_body("the same"))
    Delivery(DEFAULT_API_KEY, sg.url, Policy(timeout=10)).deliver(_body("the same"))
    theirs, ours = sg.accepted_requests
    assert ours.body == theirs.body
    same = {"authorization", "content-type", "accept", "user-agent", "content-length", "host"}
    assert {k: v for k, v in ours.headers.items() if k in same} == {
        k: v for k, v in theirs.headers.items() if k in same
    }
    assert ours.headers["content-type"] == "application/json"


def test_the_key_and_the_body_stay_out_of_the_log_even_at_debug(
    sg: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = Delivery(DEFAULT_API_KEY, sg.url, Policy(timeout=10))
    with caplog.at_level(logging.DEBUG, logger="python_http_client"):
        delivery.deliver(_body("a secret subject"))
    assert len(sg.accepted_requests) == 1
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert DEFAULT_API_KEY not in logged and "a secret subject" not in logged
