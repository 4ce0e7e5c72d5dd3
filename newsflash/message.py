"""The message every transport sends: rendered once, personalised per recipient at the edge.

The outbox, the preview .eml and the SendGrid payload all take their headers from here, so a
partner gets the same List-Unsubscribe and the same From whichever way the email left.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from newsflash import personalise
from newsflash.config_loaded import Config
from newsflash.personalise import Person
from newsflash.render import RenderedEmail
from newsflash.tokens import Signer, unsubscribe_link

TEST_PREFIX = "[TEST] "


@dataclass(frozen=True)
class Message:
    """An edition's email as sent: body with substitution tags, and who it is from."""

    edition_id: str
    newsletter: str
    subject: str
    html: str
    text: str
    from_email: str
    from_name: str
    reply_to: str
    categories: tuple[str, ...]
    unsubscribe_url: str
    unsubscribe_mailto: str
    fallback_name: str
    timezone: str = "UTC"
    list_id: str = ""
    test: bool = False
    public_url: str = ""
    """Where `newsflash serve` answers; set, the unsubscribe link carries a signed token."""
    signer: Signer | None = None
    """Signs each partner's token; None when building (the link then shows a sample token)."""

    def token_for(self, person: Person) -> str:
        """The partner's signed unsubscribe token, or the sample one in a build or preview."""
        if self.signer is None:
            return personalise.SAMPLE_TOKEN
        return self.signer.unsubscribe_token(person.recipient_id)

    def link_token(self, person: Person) -> str:
        """The token the links carry: signed (or the sample) with a public_url, "" without.
        A payload signs it once per partner and hands it to the two methods below: signing
        three times was a third of a 100k send's payload time."""
        return self.token_for(person) if self.public_url else ""

    def unsubscribe_for(self, person: Person, token: str | None = None) -> str:
        if self.public_url:
            return unsubscribe_link(
                self.public_url, self.token_for(person) if token is None else token
            )
        return personalise.unsubscribe_url(
            self.unsubscribe_url, self.edition_id, person.recipient_id
        )

    def list_headers(self, person: Person, token: str | None = None) -> dict[str, str]:
        """RFC 2369 + RFC 8058 one-click headers, per recipient; the mailto subject carries the
        same token as the link, so a reply can be matched to a partner without guessing.
        `token`: the partner's `link_token`, if the caller has it already."""
        if token is None:
            token = self.link_token(person)
        targets = [f"<{self.unsubscribe_for(person, token)}>"]
        if self.unsubscribe_mailto:
            key = token if self.public_url else person.recipient_id
            targets.append(f"<mailto:{self.unsubscribe_mailto}?subject=unsubscribe-{key}>")
        return {
            "List-Unsubscribe": ", ".join(targets),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    def substitutions(self, person: Person, token: str | None = None) -> dict[str, str]:
        if token is None:
            token = self.link_token(person)
        return personalise.substitutions(person, self.fallback_name, token)


def message_from(
    config: Config,
    rendered: RenderedEmail,
    *,
    test: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Message:
    """The message of a build (no `environ`: sample tokens) or of a send (`environ` holds
    NEWSFLASH_SECRET, required once `[serve] public_url` is set: a send never goes out with
    links that cannot unsubscribe anyone)."""
    m = config.model
    public_url = m.serve.public_url
    signer = Signer.from_env(environ) if public_url and environ is not None else None
    categories = tuple(
        dict.fromkeys(
            c[:255] for c in ("newsflash", f"edition-{rendered.edition_id}", *m.sendgrid.categories)
        )
    )[:10]
    return Message(
        edition_id=rendered.edition_id,
        newsletter=m.newsletter.name,
        subject=(TEST_PREFIX if test else "") + rendered.subject,
        html=rendered.html,
        text=rendered.text,
        from_email=m.sender.from_email,
        from_name=m.sender.from_name,
        reply_to=m.sender.reply_to,
        categories=categories,
        unsubscribe_url=m.sender.unsubscribe_url,
        unsubscribe_mailto=m.sender.unsubscribe_mailto,
        fallback_name=m.newsletter.greeting_fallback,
        timezone=m.newsletter.timezone,
        list_id=list_id(m.newsletter.name, m.sender.from_email),
        test=test,
        public_url=public_url,
        signer=signer,
    )


def list_id(name: str, from_email: str) -> str:
    """RFC 2919's List-Id, derived from the newsletter's name and the sender's domain, so
    partners' filters ("skip the inbox for this list") keep working whoever sends an edition
    and no one has to invent an identifier: `ASA Newsflash <asa-newsflash.example.org>`.

    The phrase is the name folded to ASCII without quotes, brackets or backslashes: the
    header is unstructured to Python's email package, which would otherwise re-fold an
    encoded name into a phrase that no longer parses."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    phrase = " ".join(re.sub(r'["<>()\\\[\]]+', " ", ascii_name).split()).replace(" ,", ",")
    label = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "newsflash"
    domain = from_email.rpartition("@")[2].lower() or "newsflash.local"
    quoted = f'"{phrase}"' if re.search(r"[,;:@.]", phrase) else phrase
    return f"{quoted} <{label}.{domain}>" if phrase else f"<{label}.{domain}>"


def date_header(timezone: str) -> str:
    """Now, with the newsletter's own zone offset: `-0000` would tell the client the zone
    is unknown, and some show it as a warning or sort it oddly."""
    return email.utils.format_datetime(dt.datetime.now(ZoneInfo(timezone)))


def to_mime(
    message: Message, person: Person, *, message_id_domain: str | None = None
) -> EmailMessage:
    """A complete multipart/alternative message, as a partner's mail client would receive it."""
    subs = message.substitutions(person)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((message.from_name, message.from_email))
    msg["To"] = email.utils.formataddr((person.display_name, person.email))
    msg["Subject"] = message.subject
    if message.reply_to:
        msg["Reply-To"] = message.reply_to
    msg["Date"] = date_header(message.timezone)
    domain = message_id_domain or message.from_email.rpartition("@")[2] or "newsflash.local"
    msg["Message-ID"] = email.utils.make_msgid(
        idstring=f"{message.edition_id}.{person.recipient_id}", domain=domain
    )
    if message.list_id:
        msg["List-Id"] = message.list_id
    for name, value in message.list_headers(person).items():
        msg[name] = value
    msg["X-Newsflash-Edition"] = message.edition_id
    msg["X-Newsflash-Recipient"] = person.recipient_id
    msg.set_content(personalise.apply(message.text, subs), subtype="plain", cte="quoted-printable")
    msg.add_alternative(
        personalise.apply(message.html, subs), subtype="html", cte="quoted-printable"
    )
    for part in msg.iter_parts():  # add_alternative leaves a MIME-Version in the HTML part
        del part["MIME-Version"]
    return msg
