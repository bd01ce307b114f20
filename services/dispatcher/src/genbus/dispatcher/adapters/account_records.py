"""Operators' records of provider accounts: list, read, create, update, status, re-encryption."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text

from genbus.dispatcher.adapters.account_rows import (
    JSON_COLUMNS,
    UPDATABLE,
    VIEW_SQL,
    AccountExists,
    AccountQueries,
    AccountView,
    account_id_for,
    row_params,
    view_from_row,
)
from genbus.dispatcher.domain.model import (
    AccountStatus,
)


class AccountRecords(AccountQueries):
    """What the admin API and CLIs do with accounts."""

    async def list_accounts(self) -> list[AccountView]:
        rows = await self._conn.execute(text(f"{VIEW_SQL} ORDER BY a.provider_id, a.label"))
        return [view_from_row(r) for r in rows]

    async def get_account(self, account_id: str) -> AccountView | None:
        row = (
            await self._conn.execute(text(f"{VIEW_SQL} WHERE a.id = :a"), {"a": account_id})
        ).first()
        return view_from_row(row) if row else None

    async def insert_account(
        self,
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
        result = await self._conn.execute(
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
                **row_params(
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
        self,
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
        await self._conn.execute(
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
            row_params(
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

    async def lock_account(self, account_id: str) -> str | None:
        """Lock the account row for a change; its provider id, or None when there is no such row."""
        provider_id = await self._conn.scalar(
            text("SELECT provider_id FROM dispatcher.provider_accounts WHERE id = :a FOR UPDATE"),
            {"a": account_id},
        )
        return str(provider_id) if provider_id is not None else None

    async def update_account(self, account_id: str, changes: Mapping[str, Any]) -> bool:
        """Set `changes` (columns from `UPDATABLE`); False when there is no such account.

        AccountExists when a new label is taken by another account.
        """
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if not changes:
            return await self.lock_account(account_id) is not None
        assignments = []
        params: dict[str, Any] = {"a": account_id}
        for column, value in changes.items():
            if column in JSON_COLUMNS:
                assignments.append(f"{column} = CAST(:{column} AS jsonb)")
                params[column] = json.dumps(value) if value is not None else None
            else:
                assignments.append(f"{column} = :{column}")
                params[column] = value
        if "label" in changes:
            taken = await self._conn.scalar(
                text("SELECT 1 FROM dispatcher.provider_accounts WHERE label = :l AND id <> :a"),
                {"l": changes["label"], "a": account_id},
            )
            if taken:
                raise AccountExists(str(changes["label"]))
        result = await self._conn.execute(
            text(
                f"UPDATE dispatcher.provider_accounts SET {', '.join(assignments)}, "
                "updated_at = now() WHERE id = :a"
            ),
            params,
        )
        return bool(result.rowcount)

    async def set_status(
        self,
        account_id: str,
        status: AccountStatus,
        reason: str | None,
        *,
        clear_cooldown: bool = False,
    ) -> bool:
        """Set the stored status (active, exhausted, disabled); False when there is no account.

        `clear_cooldown` (an operator's enable) also closes the circuit breaker.
        """
        if status is AccountStatus.COOLING_DOWN:
            raise ValueError("cooling_down is derived from cooldown_until, never stored")
        result = await self._conn.execute(
            text(
                """
                UPDATE dispatcher.provider_accounts
                   SET status = :st, status_reason = :reason, updated_at = now(),
                       cooldown_until = CASE WHEN :clear THEN NULL ELSE cooldown_until END,
                       breaker_failures = CASE WHEN :clear THEN 0 ELSE breaker_failures END,
                       breaker_open_until = CASE WHEN :clear THEN NULL
                                                 ELSE breaker_open_until END,
                       breaker_opened_count = CASE WHEN :clear THEN 0
                                                   ELSE breaker_opened_count END
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

    async def credentials_for_update(self) -> list[tuple[str, str]]:
        """(id, ciphertext) of every account, rows locked until the transaction ends."""
        rows = await self._conn.execute(
            text(
                "SELECT id, credentials_ciphertext FROM dispatcher.provider_accounts "
                "ORDER BY id FOR UPDATE"
            )
        )
        return [(r.id, r.credentials_ciphertext) for r in rows]

    # -- standing, as the scheduler and submissions see it ---------------------------------
