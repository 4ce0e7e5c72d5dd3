"""The addresses of subscribers.csv: what SendGrid can take, checked fast for the usual case.

email-validator decides; the fast path only answers for plain ASCII dot-atom addresses whose
domain it certainly accepts, so every unusual address still gets the full check and its error
message. Addresses are ASCII only (an international domain goes as punycode): SendGrid refuses
SMTPUTF8, and a refusal after a 202 would be a partner silently lost.
"""

from __future__ import annotations

import re

import email_validator
from email_validator import EmailNotValidError, validate_email

from newsflash.subscriber_rows import shown

__all__ = ["MAX_ADDRESS_LENGTH", "Addresses"]

# Only the fast path needs these; without them every address takes the full check.
_RFC2142_NAMES: frozenset[str] | None
try:
    from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

    _RFC2142_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
except ImportError:  # pragma: no cover - depends on email-validator internals
    _RFC2142_NAMES = None

# A plain ASCII dot-atom address: the overwhelming majority of real rows, and the only shape the
# fast path in `Addresses._fast` will vouch for.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_PLAIN_ADDRESS = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([A-Za-z0-9.\-]+)")
_PLAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")
MAX_ADDRESS_LENGTH = 254  # RFC 5321 via email-validator; ASCII, so characters == octets
_MAX_LOCAL_LENGTH = 64  # only enforced by email-validator in strict mode; stay out of that


class Addresses:
    """One file's address checks, with each domain's verdict cached: a list of 100k partners
    names a few hundred domains."""

    def __init__(self) -> None:
        self.domain_cache: dict[str, str | None] = {}

    def normalise(self, raw: str, errors: list[str], delimiter: str) -> str | None:
        """The address as it is sent, or None with why in `errors` (`delimiter`: the file's,
        to point at a row that uses another)."""
        if not raw:
            errors.append("the email address is empty; fill it in or delete the row")
            return None
        fast = self._fast(raw)
        if fast is not None:
            return fast
        try:
            # SendGrid takes ASCII addresses only: an international domain goes as punycode,
            # and a non-ASCII local part (SMTPUTF8) is refused here, not lost after a 202.
            valid = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            hint = _delimiter_hint(raw, delimiter)
            errors.append(
                f"{shown(raw)} is not a valid email address ({exc}){hint}; "
                "correct it or delete the row"
            )
            return None
        return valid.ascii_email or valid.normalized

    def _fast(self, raw: str) -> str | None:
        """email-validator's answer for plain ASCII addresses, without its per-character checks.

        Full validation costs ~20 µs an address (2 s per 100k rows), nearly all of it Unicode
        checks on the domain that cannot fail for ASCII. For a dot-atom local part of at most
        64 characters it returns the local part unchanged, except RFC 2142 role names, which it
        lowercases. The domain test only ever says "certainly valid" or "ask email-validator",
        so anything unusual still gets the full check and its error message.
        """
        if _RFC2142_NAMES is None or len(raw) > MAX_ADDRESS_LENGTH:
            return None
        match = _PLAIN_ADDRESS.fullmatch(raw)
        if match is None:
            return None
        local, domain = match.groups()
        if len(local) > _MAX_LOCAL_LENGTH or local.lower() in _RFC2142_NAMES:
            return None
        try:
            plain = self.domain_cache[domain]
        except KeyError:
            plain = self.domain_cache[domain] = _plain_domain(domain)
        return None if plain is None else f"{local}@{plain}"


def _delimiter_hint(raw: str, delimiter: str) -> str:
    others = [d for d in ",;\t|" if d != delimiter and d in raw]
    if not others:
        return ""
    return (
        f"; this row seems to use {others[0]!r} between values while the header uses "
        f"{delimiter!r}: use one delimiter throughout"
    )


def _plain_domain(domain: str) -> str | None:
    """The lowercased domain if email-validator certainly accepts it as is, else None.

    Mirrors its rules for ASCII names: labels of 1-63 letters, digits and inner hyphens; at least
    one dot; a TLD ending in a letter; no special-use name. Labels with "--" in 3rd-4th place are
    Punycode or reserved, which email-validator decodes or rejects, so they go to it.
    """
    lowered = domain.lower()
    labels = lowered.split(".")
    if len(labels) < 2 or not lowered[-1].isalpha():
        return None
    for label in labels:
        if label[2:4] == "--" or _PLAIN_LABEL.fullmatch(label) is None:
            return None
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if lowered == special or lowered.endswith("." + special):
            return None
    return lowered
