"""SQL for idempotency keys: a claim is an insert that a unique key turns into a no-op when the
key is taken, so two concurrent requests with one key can never both create."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from genbus.api.adapters.tables import idempotency_keys

_t = idempotency_keys


@dataclass(frozen=True)
class StoredKey:
    request_hash: str
    generation_id: UUID
    created_at: datetime


class IdempotencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(
        self,
        *,
        user_id: str,
        key: str,
        request_hash: str,
        generation_id: UUID,
        at: datetime,
        expired_before: datetime,
    ) -> StoredKey | None:
        """Claim `key` for a new generation: None when claimed, else the key as first used.

        A concurrent claim of the same key waits here until the other transaction ends; if it
        committed, its row is returned (read committed: the next statement sees it).
        """
        await self._conn.execute(
            delete(_t).where(
                _t.c.user_id == user_id, _t.c.key == key, _t.c.created_at < expired_before
            )
        )
        claimed = await self._conn.scalar(
            insert(_t)
            .values(
                user_id=user_id,
                key=key,
                request_hash=request_hash,
                generation_id=generation_id,
                created_at=at,
            )
            .on_conflict_do_nothing(index_elements=[_t.c.user_id, _t.c.key])
            .returning(_t.c.key)
        )
        if claimed is not None:
            return None
        row = (
            await self._conn.execute(
                select(_t.c.request_hash, _t.c.generation_id, _t.c.created_at).where(
                    _t.c.user_id == user_id, _t.c.key == key
                )
            )
        ).first()
        if row is None:  # pragma: no cover - the row that conflicted was purged meanwhile
            raise RuntimeError("idempotency key vanished while being claimed")
        return StoredKey(row.request_hash, row.generation_id, row.created_at)

    async def find(self, *, user_id: str, key: str, not_before: datetime) -> StoredKey | None:
        """The key as first used, if `user_id` used it since `not_before` (a plain read)."""
        row = (
            await self._conn.execute(
                select(_t.c.request_hash, _t.c.generation_id, _t.c.created_at).where(
                    _t.c.user_id == user_id, _t.c.key == key, _t.c.created_at >= not_before
                )
            )
        ).first()
        return (
            None if row is None else StoredKey(row.request_hash, row.generation_id, row.created_at)
        )

    async def forget_generation(self, generation_id: UUID) -> None:
        await self._conn.execute(delete(_t).where(_t.c.generation_id == generation_id))

    async def purge(self, *, before: datetime, limit: int) -> int:
        """Delete at most `limit` keys created before `before`; how many went."""
        batch = select(_t.c.user_id, _t.c.key).where(_t.c.created_at < before).limit(limit)
        result = await self._conn.execute(
            delete(_t).where(tuple_(_t.c.user_id, _t.c.key).in_(batch))
        )
        return result.rowcount or 0
