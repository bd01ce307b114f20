"""Reads provider accounts (base URL, decrypted credentials) from the directory KV bucket.

Every way an account can be unusable is its own error, so the caller can tell "not synced yet"
from "will never work". Error messages never carry the entry's content: it holds ciphertext.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from nats.js.errors import InvalidKeyError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from genbus.contracts import AccountDirectoryEntry
from genbus.providers import CredentialCipher, CredentialDecryptError, Credentials


@dataclass(frozen=True)
class AccountAccess:
    account_id: str
    provider_id: str
    base_url: str | None
    credentials: Credentials


class AccountLookupError(Exception):
    """The account cannot be used; `reason` says why without showing the entry."""

    def __init__(self, account_id: str, reason: str) -> None:
        super().__init__(f"account {account_id!r}: {reason}")
        self.account_id = account_id
        self.reason = reason


class AccountUnknown(AccountLookupError, LookupError):
    """The directory has no entry for the account (yet)."""


class AccountEntryInvalid(AccountLookupError):
    """The directory's entry for the account is not a valid `AccountDirectoryEntry`."""


class AccountCredentialsUnreadable(AccountLookupError):
    """The account's sealed credentials do not open: no configured key, or the entry was moved
    under another account id or edited (another base URL, provider or status)."""


class KvReader(Protocol):
    """The part of a JetStream `KeyValue` the directory reads."""

    async def get(self, key: str) -> KeyValue.Entry: ...


class AccountDirectory:
    """A small TTL cache in front of the KV bucket the dispatcher keeps current.

    Only readable accounts are cached: a failed read is retried on the next `get`.
    """

    def __init__(self, kv: KvReader, cipher: CredentialCipher, ttl_s: float = 10.0) -> None:
        self._kv = kv
        self._cipher = cipher
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, AccountAccess]] = {}

    async def get(self, account_id: str) -> AccountAccess:
        """The account; AccountUnknown, AccountEntryInvalid or AccountCredentialsUnreadable."""
        now = time.monotonic()
        cached = self._cache.get(account_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        self._cache.pop(account_id, None)
        access = await self._read(account_id)
        self._cache[account_id] = (now, access)
        return access

    async def _read(self, account_id: str) -> AccountAccess:
        try:
            entry = await self._kv.get(account_id)
        except (KeyNotFoundError, InvalidKeyError):  # deleted keys raise KeyNotFoundError too
            raise AccountUnknown(account_id, "not in the account directory") from None
        if not entry.value:
            raise AccountEntryInvalid(account_id, "the entry is empty")
        try:
            record = AccountDirectoryEntry.model_validate_json(entry.value)
        except ValidationError as exc:
            raise AccountEntryInvalid(account_id, _describe(exc)) from None
        if record.account_id != account_id:
            raise AccountEntryInvalid(account_id, "the entry names another account")
        try:
            # Sealed with every other field: a moved or edited entry does not open.
            credentials = self._cipher.unseal(record.sealed_credentials, record.bound_fields())
        except CredentialDecryptError as exc:
            raise AccountCredentialsUnreadable(account_id, str(exc)) from None
        return AccountAccess(
            account_id=record.account_id,
            provider_id=record.provider_id,
            base_url=record.base_url,
            credentials=credentials,
        )


def _describe(exc: ValidationError) -> str:
    """Where and what is wrong, without the input values (which may hold the ciphertext)."""
    problems = (
        f"{'.'.join(str(part) for part in error['loc']) or 'entry'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    )
    return "invalid entry (" + "; ".join(problems) + ")"
