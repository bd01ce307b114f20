"""API keys: how they look, how they are stored (a SHA-256 digest, never the key), who holds one.

A key is `gbk_` + 43 url-safe characters (256 random bits). With that much entropy a plain
SHA-256 digest is as good as a slow password hash: nobody can guess a key from its digest.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from genbus.api.domain.limits import Limits

KEY_PREFIX = "gbk_"
#: How many characters of a key identify it in listings and logs (prefix included).
DISPLAY_LENGTH = len(KEY_PREFIX) + 8
_KEY_SHAPE = re.compile(r"^gbk_[A-Za-z0-9_-]{43}$")


def new_api_key() -> str:
    """A fresh random key. Shown once to its holder; only its digest is stored."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_api_key(candidate: str) -> bool:
    """Whether `candidate` has a key's shape (checked before any database look-up)."""
    return bool(_KEY_SHAPE.fullmatch(candidate))


def digest_api_key(key: str) -> str:
    """The SHA-256 hex digest a key is stored and looked up by."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def display_prefix(key: str) -> str:
    """The start of a key, enough to tell keys apart, useless to an attacker."""
    return key[:DISPLAY_LENGTH]


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """A stored key, without its secret."""

    id: UUID
    user_id: str
    name: str
    prefix: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None
    #: The key's tier (None: the default tier) and its own overrides of that tier's limits.
    tier: str | None = None
    overrides: Limits | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. `key_id` is None for anonymous requests (local development)."""

    user_id: str
    key_id: UUID | None = None
    #: Admin keys may read any user's generations; everything else stays scoped to `user_id`.
    admin: bool = False
    #: The key's tier (None: the default) and overrides; see `Tiers.effective`.
    tier: str | None = None
    overrides: Limits | None = None

    @property
    def reads_as(self) -> str | None:
        """The owner reads are restricted to; None (every owner) for an admin."""
        return None if self.admin else self.user_id
