"""Account records for operators: create, change, list and summarise, never showing a secret.

Views are built from the row plus derived state (busy slots, today's submissions); the
ciphertext is read only by `credentials_for_update`, for re-encryption.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.dispatcher.adapters.repository import BUSY_SQL, USED_TODAY_SQL
from genbus.dispatcher.domain.model import AccountStatus, account_status

_SLUG = re.compile(r"[^a-z0-9]+")

#: Columns an update may set; the values are always bound parameters.
UPDATABLE = frozenset(
    {
        "label",
        "base_url",
        "max_concurrent",
        "priority",
        "operations",
        "daily_cap",
        "credits",
        "credentials_ciphertext",
        "credential_names",
    }
)
_JSON_COLUMNS = frozenset({"operations", "credential_names"})


class AccountExists(Exception):
    """Another account already has this label (or the id made from it)."""


@dataclass(frozen=True)
class AccountView:
    """An account as shown to operators: never its credentials, only their names."""

    id: str
    provider_id: str
    label: str
    base_url: str | None
    max_concurrent: int
    priority: int
    status: AccountStatus  # `cooling_down` when active with a cooldown in the future
    status_reason: str | None
    cooldown_until: datetime | None
    busy: int
    claimed: int
    submitted: int
    daily_cap: int | None
    used_today: int
    credits: int | None
    operations: list[str] | None
    credential_names: list[str] | None
    last_used_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider_id": self.provider_id,
            "label": self.label,
            "base_url": self.base_url,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "cooldown_until": _iso(self.cooldown_until),
            "max_concurrent": self.max_concurrent,
            "busy": self.busy,
            "in_flight": {"claimed": self.claimed, "submitted": self.submitted},
            "priority": self.priority,
            "daily_cap": self.daily_cap,
            "used_today": self.used_today,
            "credits": self.credits,
            "operations": self.operations,
            "credential_names": self.credential_names,
            "last_used_at": _iso(self.last_used_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def account_id_for(label: str) -> str:
    return _SLUG.sub("-", label.lower()).strip("-")[:64] or "account"


_VIEW_SQL = f"""
    SELECT a.id, a.provider_id, a.label, a.base_url, a.max_concurrent, a.priority,
           a.status, a.status_reason, a.cooldown_until, a.daily_cap, a.credits, a.operations,
           a.credential_names, a.last_used_at, a.created_at, a.updated_at, now() AS now,
           {BUSY_SQL} AS busy, {USED_TODAY_SQL} AS used_today,
           (SELECT count(*) FROM dispatcher.dispatch_jobs j
             WHERE j.account_id = a.id AND j.state = 'claimed') AS claimed
      FROM dispatcher.provider_accounts a
"""


def _view(r: Any) -> AccountView:
    return AccountView(
        id=r.id,
        provider_id=r.provider_id,
        label=r.label,
        base_url=r.base_url,
        max_concurrent=r.max_concurrent,
        priority=r.priority,
        status=account_status(r.status, r.cooldown_until, r.now),
        status_reason=r.status_reason,
        cooldown_until=r.cooldown_until,
        busy=r.busy,
        claimed=r.claimed,
        submitted=r.busy - r.claimed,
        daily_cap=r.daily_cap,
        used_today=r.used_today,
        credits=r.credits,
        operations=r.operations,
        credential_names=r.credential_names,
        last_used_at=r.last_used_at,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


async def list_accounts(conn: AsyncConnection) -> list[AccountView]:
    rows = await conn.execute(text(f"{_VIEW_SQL} ORDER BY a.provider_id, a.label"))
    return [_view(r) for r in rows]


async def get_account(conn: AsyncConnection, account_id: str) -> AccountView | None:
    row = (await conn.execute(text(f"{_VIEW_SQL} WHERE a.id = :a"), {"a": account_id})).first()
    return _view(row) if row else None


def _row_params(
    account_id: str,
    *,
    provider_id: str,
    label: str,
    credentials_ciphertext: str,
    credential_names: Sequence[str],
    max_concurrent: int,
    priority: int,
    base_url: str | None,
    operations: Sequence[str] | None,
    daily_cap: int | None,
) -> dict[str, Any]:
    """The bind parameters of an account row, as `insert_account` and `upsert_account` write it."""
    return {
        "id": account_id,
        "p": provider_id,
        "label": label,
        "url": base_url,
        "cred": credentials_ciphertext,
        "names": json.dumps(sorted(credential_names)),
        "maxc": max_concurrent,
        "prio": priority,
        "ops": json.dumps(list(operations)) if operations is not None else None,
        "cap": daily_cap,
    }


async def insert_account(
    conn: AsyncConnection,
    *,
    provider_id: str,
    label: str,
    credentials_ciphertext: str,
    credential_names: Sequence[str],
    max_concurrent: int,
    priority: int = 0,
    base_url: str | None = None,
    operations: Sequence[str] | None = None,
    daily_cap: int | None = None,
    credits: int | None = None,
) -> str:
    """Create an account; AccountExists when its label (or id) is taken. Returns its id."""
    account_id = account_id_for(label)
    result = await conn.execute(
        text(
            """
            INSERT INTO dispatcher.provider_accounts
                (id, provider_id, label, base_url, credentials_ciphertext, credential_names,
                 max_concurrent, priority, status, operations, daily_cap, credits)
            VALUES (:id, :p, :label, :url, :cred, CAST(:names AS jsonb), :maxc, :prio, 'active',
                    CAST(:ops AS jsonb), :cap, :credits)
            ON CONFLICT DO NOTHING
            """
        ),
        {
            **_row_params(
                account_id,
                provider_id=provider_id,
                label=label,
                credentials_ciphertext=credentials_ciphertext,
                credential_names=credential_names,
                max_concurrent=max_concurrent,
                priority=priority,
                base_url=base_url,
                operations=operations,
                daily_cap=daily_cap,
            ),
            "credits": credits,
        },
    )
    if not result.rowcount:
        raise AccountExists(label)
    return account_id


async def upsert_account(
    conn: AsyncConnection,
    *,
    provider_id: str,
    label: str,
    credentials_ciphertext: str,
    credential_names: Sequence[str],
    max_concurrent: int,
    priority: int = 0,
    base_url: str | None = None,
    operations: Sequence[str] | None = None,
    daily_cap: int | None = None,
) -> str:
    """Create the account, or update the one with this label (bootstrap seeding); its id."""
    account_id = account_id_for(label)
    await conn.execute(
        text(
            """
            INSERT INTO dispatcher.provider_accounts
                (id, provider_id, label, base_url, credentials_ciphertext, credential_names,
                 max_concurrent, priority, status, operations, daily_cap)
            VALUES (:id, :p, :label, :url, :cred, CAST(:names AS jsonb), :maxc, :prio, 'active',
                    CAST(:ops AS jsonb), :cap)
            ON CONFLICT (label) DO UPDATE
               SET provider_id = EXCLUDED.provider_id, base_url = EXCLUDED.base_url,
                   credentials_ciphertext = EXCLUDED.credentials_ciphertext,
                   credential_names = EXCLUDED.credential_names,
                   max_concurrent = EXCLUDED.max_concurrent, priority = EXCLUDED.priority,
                   operations = EXCLUDED.operations, daily_cap = EXCLUDED.daily_cap,
                   updated_at = now()
            """
        ),
        _row_params(
            account_id,
            provider_id=provider_id,
            label=label,
            credentials_ciphertext=credentials_ciphertext,
            credential_names=credential_names,
            max_concurrent=max_concurrent,
            priority=priority,
            base_url=base_url,
            operations=operations,
            daily_cap=daily_cap,
        ),
    )
    return account_id


async def lock_account(conn: AsyncConnection, account_id: str) -> str | None:
    """Lock the account row for a change; its provider id, or None when there is no such row."""
    provider_id = await conn.scalar(
        text("SELECT provider_id FROM dispatcher.provider_accounts WHERE id = :a FOR UPDATE"),
        {"a": account_id},
    )
    return str(provider_id) if provider_id is not None else None


async def update_account(
    conn: AsyncConnection, account_id: str, changes: Mapping[str, Any]
) -> bool:
    """Set `changes` (columns from `UPDATABLE`); False when there is no such account.

    AccountExists when a new label is taken by another account.
    """
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return await lock_account(conn, account_id) is not None
    assignments = []
    params: dict[str, Any] = {"a": account_id}
    for column, value in changes.items():
        if column in _JSON_COLUMNS:
            assignments.append(f"{column} = CAST(:{column} AS jsonb)")
            params[column] = json.dumps(value) if value is not None else None
        else:
            assignments.append(f"{column} = :{column}")
            params[column] = value
    if "label" in changes:
        taken = await conn.scalar(
            text("SELECT 1 FROM dispatcher.provider_accounts WHERE label = :l AND id <> :a"),
            {"l": changes["label"], "a": account_id},
        )
        if taken:
            raise AccountExists(str(changes["label"]))
    result = await conn.execute(
        text(
            f"UPDATE dispatcher.provider_accounts SET {', '.join(assignments)}, "
            "updated_at = now() WHERE id = :a"
        ),
        params,
    )
    return bool(result.rowcount)


async def set_status(
    conn: AsyncConnection,
    account_id: str,
    status: AccountStatus,
    reason: str | None,
    *,
    clear_cooldown: bool = False,
) -> bool:
    """Set the stored status (active, exhausted, disabled); False when there is no such account."""
    if status is AccountStatus.COOLING_DOWN:
        raise ValueError("cooling_down is derived from cooldown_until, never stored")
    result = await conn.execute(
        text(
            """
            UPDATE dispatcher.provider_accounts
               SET status = :st, status_reason = :reason, updated_at = now(),
                   cooldown_until = CASE WHEN :clear THEN NULL ELSE cooldown_until END
             WHERE id = :a
            """
        ),
        {
            "a": account_id,
            "st": status.value,
            "reason": reason[:500] if reason else None,
            "clear": clear_cooldown,
        },
    )
    return bool(result.rowcount)


async def credentials_for_update(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(id, ciphertext) of every account, rows locked until the transaction ends."""
    rows = await conn.execute(
        text(
            "SELECT id, credentials_ciphertext FROM dispatcher.provider_accounts "
            "ORDER BY id FOR UPDATE"
        )
    )
    return [(r.id, r.credentials_ciphertext) for r in rows]


async def queue_depth(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Per provider: queued jobs, how many are due now, and how long the oldest due one waits."""
    rows = await conn.execute(
        text(
            """
            SELECT provider_id,
                   count(*) AS queued,
                   count(*) FILTER (WHERE due_at <= now()) AS due,
                   EXTRACT(EPOCH FROM now() - min(COALESCE(scheduled_at, created_at))
                                             FILTER (WHERE due_at <= now()))
                       AS oldest_waiting_s
              FROM dispatcher.dispatch_jobs
             WHERE state = 'queued'
             GROUP BY provider_id
             ORDER BY provider_id
            """
        )
    )
    return [
        {
            "provider_id": r.provider_id,
            "queued": r.queued,
            "due": r.due,
            "oldest_waiting_s": (
                round(float(r.oldest_waiting_s), 3) if r.oldest_waiting_s is not None else None
            ),
        }
        for r in rows
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
