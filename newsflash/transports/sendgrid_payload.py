"""The JSON body of a SendGrid v3 Mail Send request: pure, no HTTP, no key.

One personalization per recipient carries what differs between partners (the address, the
substitutions that fill the first name and unsubscribe link, the per-recipient custom_args and
List-Unsubscribe headers); everything else (subject, both bodies, categories) is sent once per
request. The payload is a plain dict: the library's helper classes cost more than the request
for 1000 personalizations, and `Mail.add_personalization` reverses their order.

What a send posts is `Payloads.body`: the bytes `json.dumps` makes of that dict, written
straight from each partner's values. Building 1000 personalizations as dicts and then encoding
them was most of a request's client time (12.6 ms of a 1000-partner batch, against 4 ms
written as text); the part every request of a message shares (both bodies, ~100 KB) is
encoded once per message.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from newsflash.message import Message
from newsflash.personalise import FIRST_NAME, FIRST_NAME_HTML, RECIPIENT_ID, TOKEN, Person

__all__ = ["JSON", "MAX_PER_REQUEST", "Payloads"]

MAX_PER_REQUEST = 1000
_NAME_SPECIALS = re.compile(r"[,;\"]")

JSON = dict[str, Any]


def _display_name(name: str) -> str | None:
    """SendGrid drops recipients whose name holds an unquoted ',' or ';' (sendgrid-python#291)."""
    name = " ".join(name.split())
    if not name:
        return None
    if _NAME_SPECIALS.search(name):
        return '"' + name.replace('"', "") + '"'
    return name


def _address(email_: str, name: str) -> dict[str, str]:
    address = {"email": email_}
    display = _display_name(name)
    if display:
        address["name"] = display
    return address


def _personalization(person: Person, message: Message) -> JSON:
    token = message.link_token(person)  # signed once for both the links and the headers
    return {
        "to": [_address(person.email, person.display_name)],
        "substitutions": message.substitutions(person, token),
        "custom_args": {"edition": message.edition_id, "recipient_id": person.recipient_id},
        "headers": message.list_headers(person, token),
    }


# A str as JSON, exactly as `json.dumps` writes it (ensure_ascii): the encoder json.dumps
# itself calls, undocumented but there since Python 2.6 (the tests pin the bytes).
_string = encode_basestring_ascii


def _keys(*names: str) -> tuple[str, ...]:
    return tuple(f"{_string(name)}: " for name in names)


_SUBSTITUTIONS = _keys(FIRST_NAME, FIRST_NAME_HTML, RECIPIENT_ID, TOKEN)
_HEADERS = _keys("List-Unsubscribe", "List-Unsubscribe-Post")


def _personalization_json(person: Person, message: Message, edition: str) -> str:
    """`json.dumps(_personalization(person, message))`, written from the same values in the
    same order (test_sendgrid_payload holds the two byte for byte equal); `edition`: the
    message's edition id as a JSON string."""
    token = message.link_token(person)
    email = _string(person.email)
    display = _display_name(person.display_name)
    to = f'{{"email": {email}, "name": {_string(display)}}}' if display else f'{{"email": {email}}}'
    s1, s2, s3, s4 = _SUBSTITUTIONS
    first, first_html, rid, link_token = message.substitutions(person, token).values()
    h1, h2 = _HEADERS
    unsubscribe, one_click = message.list_headers(person, token).values()
    return (
        f'{{"to": [{to}], "substitutions": {{{s1}{_string(first)}, {s2}{_string(first_html)}, '
        f"{s3}{_string(rid)}, {s4}{_string(link_token)}}}, "
        f'"custom_args": {{"edition": {edition}, "recipient_id": {_string(person.recipient_id)}}}, '
        f'"headers": {{{h1}{_string(unsubscribe)}, {h2}{_string(one_click)}}}}}'
    )


_HEAD = '{"personalizations": ['


@dataclass(frozen=True)
class Payloads:
    """Builds request bodies with the account's settings (sender, ASM group, sandbox)."""

    from_email: str
    from_name: str = ""
    reply_to: str = ""
    asm_group_id: int | None = None
    sandbox: bool = False
    max_batch: int = MAX_PER_REQUEST

    def mail(self, batch: Sequence[Person], message: Message) -> JSON:
        """The exact JSON body of one request: one personalization per recipient."""
        if len(batch) > self.max_batch:
            raise ValueError(f"a batch of {len(batch)} exceeds {self.max_batch} per request")
        body: JSON = {
            "personalizations": [_personalization(person, message) for person in batch],
            "from": _address(message.from_email, message.from_name),
            "subject": message.subject,
            "content": [
                {"type": "text/plain", "value": message.text},
                {"type": "text/html", "value": message.html},
            ],
            "categories": list(message.categories),
            "custom_args": {"newsletter": message.newsletter},
        }
        if message.reply_to:
            body["reply_to"] = {"email": message.reply_to}
        self._settings(body)
        return body

    def body(self, batch: Sequence[Person], message: Message) -> bytes:
        """The request body as posted: exactly `json.dumps(self.mail(batch, message))`,
        UTF-8 (all ASCII), without building the dicts."""
        if len(batch) > self.max_batch:
            raise ValueError(f"a batch of {len(batch)} exceeds {self.max_batch} per request")
        edition = _string(message.edition_id)
        people = ", ".join([_personalization_json(p, message, edition) for p in batch])
        return f"{_HEAD}{people}{self._rest(message)}".encode()

    @functools.lru_cache(maxsize=4)  # noqa: B019 (a handful of messages a process, each reused)
    def _rest(self, message: Message) -> str:
        """What follows the personalizations, as `json.dumps` writes it: one per message."""
        whole = json.dumps(self.mail((), message))
        assert whole.startswith(_HEAD + "]"), whole[:40]  # personalizations come first
        return whole[len(_HEAD) :]

    def notice(self, to: Sequence[str], subject: str, text: str) -> JSON:
        """A plain-text notice from the configured sender, one personalization per address."""
        body: JSON = {
            "personalizations": [{"to": [{"email": a}]} for a in dict.fromkeys(to)],
            "from": _address(self.from_email, self.from_name),
            "subject": subject,
            "content": [{"type": "text/plain", "value": text}],
            "categories": ["newsflash-notice"],
        }
        if self.reply_to:
            body["reply_to"] = {"email": self.reply_to}
        self._settings(body)
        return body

    def _settings(self, body: JSON) -> None:
        if self.asm_group_id is not None:
            body["asm"] = {"group_id": self.asm_group_id}
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
