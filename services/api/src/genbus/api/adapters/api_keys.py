"""SQL for API keys. Look-ups are by digest; the key itself never reaches the database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.tables import api_keys
from genbus.api.domain.api_keys import ApiKey
from genbus.api.domain.limits import Limits
from genbus.runtime.rows import dataclass_from_row

_t = api_keys


class ApiKeyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, key: ApiKey, *, digest: str) -> None:
        await self._conn.execute(
            _t.insert().values(
                id=key.id,
                user_id=key.user_id,
                name=key.name,
                prefix=key.prefix,
                key_hash=digest,
                admin=key.admin,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
                tier=key.tier,
                limits=key.overrides.as_json() if key.overrides is not None else None,
            )
        )

    async def active_by_digest(self, digest: str) -> ApiKey | None:
        query = select(_t).where(_t.c.key_hash == digest, _t.c.revoked_at.is_(None))
        row = (await self._conn.execute(query)).mappings().first()
        return _to_domain(row) if row is not None else None

    async def list(self, *, user_id: str | None = None) -> list[ApiKey]:
        query = select(_t).order_by(_t.c.created_at, _t.c.id)
        if user_id is not None:
            query = query.where(_t.c.user_id == user_id)
        return [_to_domain(row) for row in (await self._conn.execute(query)).mappings()]

    async def revoke(self, key_id: UUID, *, at: datetime) -> ApiKey | None:
        """Revoke the key (a no-op on an already revoked one); None if there is no such key."""
        row = (
            (
                await self._conn.execute(
                    update(_t)
                    .where(_t.c.id == key_id, _t.c.revoked_at.is_(None))
                    .values(revoked_at=at)
                    .returning(*_t.c)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            row = (await self._conn.execute(select(_t).where(_t.c.id == key_id))).mappings().first()
        return _to_domain(row) if row is not None else None

    async def set_limits(
        self, key_id: UUID, *, tier: str | None, overrides: Limits | None
    ) -> ApiKey | None:
        """Replace the key's tier and overrides; None if there is no such key."""
        stored = overrides.as_json() if overrides is not None and overrides.set else None
        query = (
            update(_t).where(_t.c.id == key_id).values(tier=tier, limits=stored).returning(*_t.c)
        )
        row = (await self._conn.execute(query)).mappings().first()
        return _to_domain(row) if row is not None else None

    async def get(self, key_id: UUID) -> ApiKey | None:
        row = (await self._conn.execute(select(_t).where(_t.c.id == key_id))).mappings().first()
        return _to_domain(row) if row is not None else None


def _to_domain(row: Mapping[Any, Any]) -> ApiKey:
    limits = row["limits"]
    return dataclass_from_row(
        ApiKey, row, overrides=Limits.model_validate(limits) if limits is not None else None
    )
