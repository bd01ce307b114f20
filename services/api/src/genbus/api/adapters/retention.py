"""SQL of asset retention: terminal generations past the retention period go in bounded
batches with their idempotency keys and change history (their stored objects and
`generation_assets` rows follow in the archiver's same pass: `archiving.remove_deleted`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.domain.status import TERMINAL

_TERMINAL = ", ".join(f"'{s}'" for s in sorted(str(s) for s in TERMINAL))

_EXPIRE = text(
    f"""
    WITH doomed AS (
        SELECT id FROM api.generations
        WHERE status IN ({_TERMINAL}) AND completed_at < :before
        ORDER BY completed_at LIMIT :limit FOR UPDATE SKIP LOCKED
    ), keys AS (
        DELETE FROM api.idempotency_keys WHERE generation_id IN (SELECT id FROM doomed)
    ), changes AS (
        DELETE FROM api.generation_events WHERE generation_id IN (SELECT id FROM doomed)
    )
    DELETE FROM api.generations WHERE id IN (SELECT id FROM doomed) RETURNING id
    """
)


async def expire_generations(engine: AsyncEngine, *, before: datetime, limit: int) -> list[UUID]:
    """Delete up to `limit` generations that ended before `before` (one transaction)."""
    async with engine.begin() as conn:
        rows = (await conn.execute(_EXPIRE, {"before": before, "limit": limit})).all()
    return [row[0] for row in rows]


async def known_generations(engine: AsyncEngine, ids: list[UUID]) -> set[UUID]:
    """Which of `ids` still have a generation row or an asset row."""
    if not ids:
        return set()
    statement = text(
        "SELECT id FROM api.generations WHERE id = ANY(:ids) "
        "UNION SELECT generation_id FROM api.generation_assets WHERE generation_id = ANY(:ids)"
    )
    async with engine.connect() as conn:
        return {row[0] for row in (await conn.execute(statement, {"ids": ids})).all()}
