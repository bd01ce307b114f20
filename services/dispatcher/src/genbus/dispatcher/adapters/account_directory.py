"""Mirrors provider accounts into the account-directory KV bucket that the poller reads.

Each entry's credentials are sealed with the entry's other fields (account id, provider, base
URL, status) as associated data, so an entry copied under another key or edited by anyone but
the dispatcher does not open in the poller. An entry that already holds the same fields and
credentials is left alone (sealing is randomised: rewriting would change every entry each pass);
one in an older format (or sealed with a retired key) is sealed again.
"""

from __future__ import annotations

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import AccountDirectoryEntry
from genbus.providers import CredentialCipher, CredentialDecryptError, Credentials


async def sync_account_directory(
    engine: AsyncEngine, kv: KeyValue, cipher: CredentialCipher
) -> int:
    """Write every account's sealed entry where it changed; returns how many accounts there are."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, provider_id, base_url, credentials_ciphertext, status "
                    "FROM dispatcher.provider_accounts"
                )
            )
        ).all()
    for row in rows:
        credentials = cipher.decrypt(row.credentials_ciphertext)
        unsealed = AccountDirectoryEntry(
            account_id=row.id,
            provider_id=row.provider_id,
            base_url=row.base_url,
            sealed_credentials="",
            active=row.status != "disabled",
        )
        if await _current(kv, cipher, unsealed, credentials):
            continue
        sealed = unsealed.model_copy(
            update={"sealed_credentials": cipher.seal(credentials, unsealed.bound_fields())}
        )
        await kv.put(row.id, sealed.model_dump_json().encode())
    return len(rows)


async def _current(
    kv: KeyValue, cipher: CredentialCipher, wanted: AccountDirectoryEntry, credentials: Credentials
) -> bool:
    """Whether the stored entry already says `wanted` with these credentials, sealed by us."""
    try:
        entry = await kv.get(wanted.account_id)
    except KeyNotFoundError:  # first write (or deleted)
        return False
    if not entry.value:
        return False
    try:
        stored = AccountDirectoryEntry.model_validate_json(entry.value)
        if stored.bound_fields() != wanted.bound_fields():
            return False
        return cipher.unseal(stored.sealed_credentials, stored.bound_fields()) == credentials
    except (ValidationError, CredentialDecryptError):
        return False
