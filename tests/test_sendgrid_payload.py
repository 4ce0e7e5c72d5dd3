"""The bytes a send posts: exactly `json.dumps` of the request's dict, whoever the partners are.

`Payloads.body` writes each personalization's JSON straight from the partner's values instead
of building dicts for `json.dumps` (most of a 1000-partner request's client time), so what
SendGrid receives must stay byte for byte what the dict, the readable form that dry runs show,
encodes to: for any names and addresses, with or without the optional parts of a message.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest
from conftest import TEST_SECRET
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflash.message import Message
from newsflash.personalise import Person
from newsflash.recipient_ids import recipient_id
from newsflash.tokens import Signer
from newsflash.transports.sendgrid import SendGridTransport
from newsflash.transports.sendgrid_payload import Payloads

# Quotes, backslashes, commas (quoted display names), control and line-separator characters,
# non-ASCII and characters outside the BMP (escaped as surrogate pairs).
_TEXT = st.text(
    alphabet=st.sampled_from(list("aZ 09,;\"\\'<>&@.-_\t\n\x00\x1f\x7f\u2028é€ßü\U0001f600")),
    max_size=12,
)


def _message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "edition_id": "2022-02",
        "newsletter": "ASA Newsflash",
        "subject": "ASA Newsflash — No. 1 «février»",
        "html": '<p>Hello -first_name_html-, <a href="x">"here"</a></p>\u2028</script>',
        "text": "Hello -first_name-,\n\tend\x00",
        "from_email": "newsflash@example.org",
        "from_name": "The ASA Secretariat",
        "reply_to": "secretariat@example.org",
        "categories": ("newsflash", "edition-2022-02"),
        "unsubscribe_url": "https://example.org/u/{recipient_id}?e={edition}",
        "unsubscribe_mailto": "unsubscribe@example.org",
        "fallback_name": "partner",
        "public_url": "https://newsflash.example.org",
        "signer": Signer([TEST_SECRET]),
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def _person(email: str, first: str, full: str) -> Person:
    return Person(recipient_id(email), email, first, full)


_PEOPLE = st.lists(
    st.builds(_person, st.builds(lambda a: f"{a}@example.org", _TEXT), _TEXT, _TEXT),
    max_size=6,
)
_MESSAGES = st.builds(
    _message,
    public_url=st.sampled_from(["https://newsflash.example.org", ""]),
    unsubscribe_mailto=st.sampled_from(["unsubscribe@example.org", ""]),
    reply_to=st.sampled_from(["secretariat@example.org", ""]),
    from_name=_TEXT,
    subject=_TEXT,
    fallback_name=_TEXT,
)
_PAYLOADS = st.builds(
    Payloads,
    from_email=st.just("newsflash@example.org"),
    asm_group_id=st.sampled_from([None, 0, 42]),
    sandbox=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(payloads=_PAYLOADS, people=_PEOPLE, message=_MESSAGES)
def test_the_body_is_byte_for_byte_json_dumps_of_the_request_dict(
    payloads: Payloads, people: list[Person], message: Message
) -> None:
    assert payloads.body(people, message) == json.dumps(payloads.mail(people, message)).encode()


def test_the_body_of_a_full_batch_is_the_dicts_json_and_a_second_batch_reuses_nothing_stale() -> (
    None
):
    payloads = Payloads(from_email="newsflash@example.org")
    message = _message()
    people = [
        _person(f"partner{i}@org{i % 7}.example.org", f"F{i}", f"F{i} L{i}") for i in range(1000)
    ]
    assert payloads.body(people, message) == json.dumps(payloads.mail(people, message)).encode()
    other = _message(subject="another edition", html="<p>other</p>")
    assert payloads.body(people[:3], other) == json.dumps(payloads.mail(people[:3], other)).encode()
    with pytest.raises(ValueError, match="exceeds 1000"):
        payloads.body([*people, people[0]], message)


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Keeps each request body's raw bytes and answers as Mail Send does."""

    bodies: ClassVar[list[bytes]]  # each test's own (the fixture's subclass)

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(202)
        self.send_header("X-Message-Id", "recorded")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Handler", (_Recorder,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bodies
    finally:
        server.shutdown()
        server.server_close()


def test_what_leaves_on_the_wire_is_the_json_of_the_payload_the_dry_run_shows(
    recorder: tuple[str, list[bytes]],
) -> None:
    url, bodies = recorder
    transport = SendGridTransport("SG.key", host=url, from_email="newsflash@example.org")
    message = _message()
    people = [
        _person("anna@example.org", "Anna", 'Anna "A, K" Keller'),
        _person("bo@x.org", "", ""),
    ]
    result = transport.send(people, message)
    assert result.outcome == "accepted"
    assert bodies == [json.dumps(transport.payload(people, message)).encode("utf-8")]
