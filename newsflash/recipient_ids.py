"""A partner's id in the ledger, the events and the suppressions: a hash of the address.

On the ground floor so the ledger can make and check ids without importing the partner list
(which imports rich for its tables).
"""

from __future__ import annotations

import hashlib


def recipient_id(email: str) -> str:
    """Case-insensitive so a re-typed address keeps its ledger history and SendGrid args."""
    return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()[:16]
