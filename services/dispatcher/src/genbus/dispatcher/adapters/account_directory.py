"""Mirrors provider accounts into the account-directory KV bucket that the poller reads."""

from __future__ import annotations

from nats.js.kv import KeyValue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import AccountDirectoryEntry


async def sync_account_directory(engine: AsyncEngine, kv: KeyValue) -> int:
    """Write every account's entry (credentials stay encrypted); returns how many were written."""
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
        entry = AccountDirectoryEntry(
            account_id=row.id,
            provider_id=row.provider_id,
            base_url=row.base_url,
            credentials_ciphertext=row.credentials_ciphertext,
            active=row.status != "disabled",
        )
        current = None
        try:
            current = await kv.get(row.id)
        except Exception:  # KeyNotFoundError: first write
            current = None
        payload = entry.model_dump_json().encode()
        if current is None or current.value != payload:
            await kv.put(row.id, payload)
    return len(rows)
