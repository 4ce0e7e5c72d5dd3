"""Unsubscribe tokens: the same HMAC-SHA256 whichever way it is computed, from any thread.

`Signer.mac` signs from a copy of an HMAC keyed once per secret and purpose (hmac.digest let go
of the GIL at each of a send's 100k tokens), so each token must stay the RFC 2104 HMAC of the
purpose and message under the secret that `hmac.digest` gives, and the shared keyed object must
not carry one message into the next.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

from newsflash.recipient_ids import recipient_id
from newsflash.tokens import Signer

_UNSUBSCRIBE = b"newsflash/unsubscribe/v1\x00"
_SECRETS = ["first-secret-" + "a" * 32, "older-secret-" + "b" * 40]


def _expected(secret: str, purpose: bytes, message: str) -> str:
    mac = hmac.digest(secret.encode(), purpose + message.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_each_mac_is_the_one_shot_hmac_of_purpose_and_message_under_the_signing_secret() -> None:
    signer = Signer(_SECRETS)
    for purpose, message in [(b"p\x00", "x"), (b"p\x00", "y"), (b"q\x00", "x"), (b"p\x00", "é")]:
        assert signer.mac(purpose, message) == _expected(_SECRETS[0], purpose, message)
        older = signer.mac(purpose, message, _SECRETS[1].encode())
        assert older == _expected(_SECRETS[1], purpose, message)
        assert signer.valid_mac(purpose, message, older)
    rid = recipient_id("anna@example.org")
    mac = _expected(_SECRETS[0], _UNSUBSCRIBE, rid)
    assert signer.unsubscribe_token(rid) == f"{rid}.{mac}"
    assert signer.recipient_of(f"{rid}.{mac}") == rid


def test_tokens_signed_from_several_threads_at_once_are_each_their_own() -> None:
    signer = Signer(_SECRETS)
    ids = [recipient_id(f"partner{i}@example.org") for i in range(4000)]
    with ThreadPoolExecutor(4) as pool:
        tokens = list(pool.map(signer.unsubscribe_token, ids, chunksize=50))
    assert tokens == [f"{rid}.{_expected(_SECRETS[0], _UNSUBSCRIBE, rid)}" for rid in ids]
