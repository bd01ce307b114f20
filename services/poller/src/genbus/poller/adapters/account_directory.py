"""Reads provider accounts (base URL, decrypted credentials) from the directory KV bucket."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from genbus.contracts import AccountDirectoryEntry
from genbus.providers import CredentialCipher, Credentials


@dataclass(frozen=True)
class AccountAccess:
    account_id: str
    base_url: str | None
    credentials: Credentials


class AccountUnknown(LookupError):
    """The directory has no entry for the account (yet)."""


class AccountDirectory:
    """A small TTL cache in front of the KV bucket the dispatcher keeps current."""

    def __init__(self, kv: KeyValue, cipher: CredentialCipher, ttl_s: float = 10.0) -> None:
        self._kv = kv
        self._cipher = cipher
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, AccountAccess]] = {}

    async def get(self, account_id: str) -> AccountAccess:
        cached = self._cache.get(account_id)
        now = time.monotonic()
        if cached and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            entry = await self._kv.get(account_id)
        except KeyNotFoundError as exc:
            raise AccountUnknown(account_id) from exc
        if entry.value is None:
            raise AccountUnknown(account_id)
        record = AccountDirectoryEntry.model_validate_json(entry.value)
        access = AccountAccess(
            account_id=record.account_id,
            base_url=record.base_url,
            credentials=self._cipher.decrypt(record.credentials_ciphertext),
        )
        self._cache[account_id] = (now, access)
        return access
