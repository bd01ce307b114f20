"""Account records: create or update by label, list without secrets."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class AccountView:
    """An account as shown to operators: never its credentials."""

    id: str
    provider_id: str
    label: str
    base_url: str | None
    max_concurrent: int
    priority: int
    status: str
    status_reason: str | None
    cooldown_until: datetime | None
    busy: int
    operations: list[str] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider_id": self.provider_id,
            "label": self.label,
            "base_url": self.base_url,
            "max_concurrent": self.max_concurrent,
            "priority": self.priority,
            "status": self.status,
            "status_reason": self.status_reason,
            "cooldown_until": self.cooldown_until.isoformat() if self.cooldown_until else None,
            "busy": self.busy,
            "operations": self.operations,
        }


def account_id_for(label: str) -> str:
    return _SLUG.sub("-", label.lower()).strip("-")[:64] or "account"


async def upsert_account(
    conn: AsyncConnection,
    *,
    provider_id: str,
    label: str,
    credentials_ciphertext: str,
    max_concurrent: int,
    priority: int = 0,
    base_url: str | None = None,
    operations: list[str] | None = None,
) -> str:
    """Create the account, or update the one with this label; returns its id."""

    account_id = account_id_for(label)
    await conn.execute(
        text(
            """
            INSERT INTO dispatcher.provider_accounts
                (id, provider_id, label, base_url, credentials_ciphertext, max_concurrent,
                 priority, status, operations)
            VALUES (:id, :p, :label, :url, :cred, :maxc, :prio, 'active', CAST(:ops AS jsonb))
            ON CONFLICT (label) DO UPDATE
               SET provider_id = EXCLUDED.provider_id, base_url = EXCLUDED.base_url,
                   credentials_ciphertext = EXCLUDED.credentials_ciphertext,
                   max_concurrent = EXCLUDED.max_concurrent, priority = EXCLUDED.priority,
                   operations = EXCLUDED.operations, updated_at = now()
            """
        ),
        {
            "id": account_id,
            "p": provider_id,
            "label": label,
            "url": base_url,
            "cred": credentials_ciphertext,
            "maxc": max_concurrent,
            "prio": priority,
            "ops": json.dumps(operations) if operations is not None else None,
        },
    )
    return account_id


async def list_accounts(conn: AsyncConnection) -> list[AccountView]:
    rows = await conn.execute(
        text(
            """
            SELECT a.id, a.provider_id, a.label, a.base_url, a.max_concurrent, a.priority,
                   a.status, a.status_reason, a.cooldown_until, a.operations,
                   (SELECT count(*) FROM dispatcher.dispatch_jobs j
                     WHERE j.account_id = a.id AND j.state IN ('claimed', 'submitted')) AS busy
              FROM dispatcher.provider_accounts a
             ORDER BY a.provider_id, a.label
            """
        )
    )
    return [
        AccountView(
            id=r.id,
            provider_id=r.provider_id,
            label=r.label,
            base_url=r.base_url,
            max_concurrent=r.max_concurrent,
            priority=r.priority,
            status=r.status,
            status_reason=r.status_reason,
            cooldown_until=r.cooldown_until,
            busy=r.busy,
            operations=r.operations,
        )
        for r in rows
    ]
