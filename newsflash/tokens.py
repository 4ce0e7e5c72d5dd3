"""Signed unsubscribe tokens: only newsflash can make one, and only for a real recipient id.

The old link carried ``sha256(address)[:16]``, which anyone who knows an address can compute,
and so unsubscribe anyone. A token is that recipient id plus an HMAC-SHA256 over it with a
secret from ``NEWSFLASH_SECRET`` (never config.toml). The variable may hold several secrets,
separated by commas or spaces: the first signs, every one verifies, so a secret is rotated by
putting the new one first and dropping the old one once the last email it signed is stale.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Mapping

from newsflash.errors import NewsflashError

__all__ = ["ENV_VAR", "SecretError", "Signer", "unsubscribe_link"]

ENV_VAR = "NEWSFLASH_SECRET"
MIN_SECRET_LENGTH = 32
MAKE_ONE = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'

# Domain separation: a token for one purpose is never valid for another.
_UNSUBSCRIBE = b"newsflash/unsubscribe/v1\x00"
_TOKEN = re.compile(r"([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
_RECIPIENT_ID = re.compile(r"[0-9a-f]{16}")


class SecretError(NewsflashError):
    """NEWSFLASH_SECRET is missing, empty or too short to sign tokens with."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Signer:
    """Signs with the first secret, verifies with any; compares in constant time."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise SecretError(
                f"{ENV_VAR} is not set; put a random secret of at least {MIN_SECRET_LENGTH} "
                f"characters in the environment (make one with: {MAKE_ONE})"
            )
        for n, secret in enumerate(secrets, 1):
            if len(secret) < MIN_SECRET_LENGTH:
                raise SecretError(
                    f"{ENV_VAR}: secret no. {n} has {len(secret)} characters, fewer than "
                    f"{MIN_SECRET_LENGTH}; replace it with a longer one (make one with: {MAKE_ONE})"
                )
        self._keys = [s.encode("utf-8") for s in secrets]
        self._keyed: dict[tuple[bytes, bytes], hmac.HMAC] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Signer:
        """Secrets from ``NEWSFLASH_SECRET``, separated by commas or whitespace."""
        return cls([s for s in re.split(r"[\s,]+", environ.get(ENV_VAR, "")) if s])

    def mac(self, purpose: bytes, message: str, key: bytes | None = None) -> str:
        """The HMAC-SHA256 of `message` for `purpose`, with the signing key unless given.

        A send signs one token per partner from several threads at once. `hmac.digest` lets go
        of the GIL on every call, and taking it back behind a thread that builds a payload
        cost up to a switch interval (5 ms) a token: a copy of the keyed, purpose-fed HMAC
        keeps the GIL for the microsecond it needs, and skips the key schedule."""
        key = key or self._keys[0]
        keyed = self._keyed.get((key, purpose))
        if keyed is None:
            keyed = self._keyed.setdefault((key, purpose), hmac.new(key, purpose, "sha256"))
        mac = keyed.copy()
        mac.update(message.encode())
        return _b64(mac.digest())

    def valid_mac(self, purpose: bytes, message: str, mac: str) -> bool:
        """True if any secret made `mac`; every secret is tried, so timing says nothing."""
        wanted = mac.encode("ascii", "replace")
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(self.mac(purpose, message, key).encode("ascii"), wanted)
        return ok

    def unsubscribe_token(self, recipient_id: str) -> str:
        if not _RECIPIENT_ID.fullmatch(recipient_id):
            raise ValueError(f"not a recipient id: {recipient_id!r}")
        return f"{recipient_id}.{self.mac(_UNSUBSCRIBE, recipient_id)}"

    def recipient_of(self, token: str) -> str | None:
        """The recipient id a genuine token names; None for anything else, whatever it is."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        rid, mac = match.groups()
        return rid if self.valid_mac(_UNSUBSCRIBE, rid, mac) else None


def unsubscribe_link(public_url: str, token: str) -> str:
    """Where the email's unsubscribe link and List-Unsubscribe header point."""
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"
