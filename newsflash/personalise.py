"""Per-recipient fields as substitution tags in the one rendered body.

Rendering runs once per edition; SendGrid fills the tags server-side from each
personalization's `substitutions`, and the outbox fills them itself with `apply`. The first
name has an HTML-escaped tag of its own because one substitution applies to both parts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

FIRST_NAME = "-first_name-"
FIRST_NAME_HTML = "-first_name_html-"
RECIPIENT_ID = "-recipient_id-"
TOKEN = "-unsubscribe_token-"

SAMPLE_RECIPIENT_ID = "0000000000000000"
# What a build or preview shows where a send puts a signed token: no secret is needed to build,
# and `newsflash serve` answers this one with its plain 400, like any token it did not sign.
SAMPLE_TOKEN = f"{SAMPLE_RECIPIENT_ID}.sample"


@dataclass(frozen=True, slots=True)  # one per partner for the whole send: no __dict__
class Person:
    """What personalisation needs of a recipient, whatever list it came from."""

    recipient_id: str
    email: str
    first_name: str = ""
    full_name: str = ""

    @property
    def display_name(self) -> str:
        """The name in the To: line: the full name where the list has one."""
        return " ".join((self.full_name or self.first_name).split())


def unsubscribe_url(template: str, edition_id: str, recipient_id: str) -> str:
    return template.format(recipient_id=recipient_id, edition=edition_id)


def substitutions(person: Person, fallback_name: str, token: str = "") -> dict[str, str]:
    name = person.first_name.strip() or fallback_name
    return {
        FIRST_NAME: name,
        FIRST_NAME_HTML: html.escape(name),
        RECIPIENT_ID: person.recipient_id,
        TOKEN: token or SAMPLE_TOKEN,
    }


def apply(body: str, subs: dict[str, str]) -> str:
    """Fill the tags as SendGrid would (plain replacement, longest tag first)."""
    for tag in sorted(subs, key=len, reverse=True):
        body = body.replace(tag, subs[tag])
    return body
