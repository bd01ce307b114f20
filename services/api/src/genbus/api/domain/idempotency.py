"""Idempotency keys: a client's name for one request, so that sending it again is harmless.

A key is scoped to its user and remembered (with a fingerprint of the request) for at least
the retention period: the same key with the same request returns the original generation,
with another request it is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from genbus.api.domain.hashing import canonical_json

#: Printable ASCII without spaces, as in the IETF Idempotency-Key draft's examples.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


@dataclass(frozen=True)
class IdempotencyClaim:
    """The key a request carries, and the fingerprint of that request."""

    key: str
    fingerprint: str


def request_fingerprint(operation: str, body: Any) -> str:
    """SHA-256 of what the request asks for: the operation (route) and its body as JSON.

    The operation is part of it, so one key cannot be used for two different routes.
    """
    document = {"operation": operation, "body": body}
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()
