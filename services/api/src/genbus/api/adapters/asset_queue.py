"""The archiving work list in `generation_assets`: found from completed generations, claimed with
a lease (`FOR UPDATE SKIP LOCKED`: replicas never copy the same output at once), then settled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genbus.api.adapters.asset_tables import ARCHIVE_FAILED, FAILED, PENDING, STORED
from genbus.api.adapters.change_log import CHANGED_EVENT, ChangeLogRepository
from genbus.api.adapters.repository import GenerationRepository, generation_snapshot


@dataclass(frozen=True)
class ArchiveJob:
    generation_id: UUID
    n: int
    source_url: str
    expected_media_type: str
    attempts: int

    @property
    def object_key(self) -> str:
        return f"generations/{self.generation_id}/{self.n}"


@dataclass(frozen=True)
class AssetRecord:
    """A generation's output copy as recorded (`status`: pending, stored or failed)."""

    generation_id: UUID
    n: int
    status: str
    object_key: str | None
    size: int | None
    sha256: str | None
    media_type: str | None
    error_code: str | None
    error_detail: str | None


_DISCOVER = text(
    f"""
    INSERT INTO api.generation_assets (generation_id, n, user_id, source_url,
        expected_media_type, status, attempts, next_attempt_at, created_at, updated_at)
    SELECT g.id, 0, g.user_id, g.asset->>'url', coalesce(g.asset->>'media_type', ''),
        '{PENDING}', 0, :now, :now, :now
    FROM api.generations g
    WHERE g.status = 'completed' AND g.asset IS NOT NULL AND g.completed_at > :since
      AND NOT EXISTS (SELECT 1 FROM api.generation_assets a WHERE a.generation_id = g.id)
    ORDER BY g.completed_at
    LIMIT :limit
    ON CONFLICT DO NOTHING
    """
)

_CLAIM = text(
    f"""
    UPDATE api.generation_assets SET next_attempt_at = :lease_until, attempts = attempts + 1,
        updated_at = :now
    WHERE (generation_id, n) IN (
        SELECT generation_id, n FROM api.generation_assets
        WHERE status = '{PENDING}' AND next_attempt_at <= :now
        ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING generation_id, n, source_url, expected_media_type, attempts
    """
)


async def discover(engine: AsyncEngine, *, now: datetime, since: datetime, limit: int) -> int:
    """Add a pending copy for each completed generation (since `since`) that has none."""
    async with engine.begin() as conn:
        result = await conn.execute(_DISCOVER, {"now": now, "since": since, "limit": limit})
    return int(getattr(result, "rowcount", 0) or 0)


async def claim(
    engine: AsyncEngine, *, now: datetime, lease: timedelta, limit: int
) -> list[ArchiveJob]:
    """Due copies, leased to us until `now + lease` (a crashed archiver's lease runs out)."""
    params = {"now": now, "lease_until": now + lease, "limit": limit}
    async with engine.begin() as conn:
        rows = (await conn.execute(_CLAIM, params)).all()
    return [ArchiveJob(r[0], r[1], r[2], r[3], r[4]) for r in rows]


async def _settle(engine: AsyncEngine, job: ArchiveJob, values: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await _settle_in(conn, job, values)


async def _settle_in(conn: AsyncConnection, job: ArchiveJob, values: dict[str, Any]) -> bool:
    """Update the pending copy; False when it is no longer pending (or gone)."""
    sets = ", ".join(f"{name} = :{name}" for name in values)
    statement = text(
        f"UPDATE api.generation_assets SET {sets} "
        f"WHERE generation_id = :gid AND n = :n AND status = '{PENDING}'"
    )
    result = await conn.execute(statement, {**values, "gid": job.generation_id, "n": job.n})
    return bool(getattr(result, "rowcount", 0))


async def mark_stored(
    engine: AsyncEngine, job: ArchiveJob, *, size: int, sha256: str, media_type: str, now: datetime
) -> None:
    """Record the copy and, in the same transaction, mark the generation's asset `stored` and
    log that change (live-status streams of the user see the durable URL)."""
    values = {
        "status": STORED,
        "object_key": job.object_key,
        "size": size,
        "sha256": sha256,
        "media_type": media_type,
        "error_code": None,
        "error_detail": None,
        "updated_at": now,
    }
    async with engine.begin() as conn:
        if not await _settle_in(conn, job, values):
            return
        generation = await GenerationRepository(conn).note_asset_stored(
            job.generation_id, sha256=sha256, size_bytes=size, media_type=media_type, now=now
        )
        if generation is None:
            return
        await ChangeLogRepository(conn).append(
            generation_id=generation.id,
            user_id=generation.user_id,
            event_type=CHANGED_EVENT,
            status=str(generation.status),
            payload=generation_snapshot(generation),
            at=now,
        )


async def mark_retry(
    engine: AsyncEngine, job: ArchiveJob, *, at: datetime, detail: str, now: datetime
) -> None:
    values = {"next_attempt_at": at, "error_detail": detail[:500], "updated_at": now}
    await _settle(engine, job, values)


async def mark_failed(engine: AsyncEngine, job: ArchiveJob, *, detail: str, now: datetime) -> None:
    values = {
        "status": FAILED,
        "error_code": ARCHIVE_FAILED,
        "error_detail": detail[:500],
        "updated_at": now,
    }
    await _settle(engine, job, values)


async def asset_records(engine: AsyncEngine, generation_id: UUID) -> list[AssetRecord]:
    statement = text(
        "SELECT generation_id, n, status, object_key, size, sha256, media_type, error_code, "
        "error_detail FROM api.generation_assets WHERE generation_id = :gid ORDER BY n"
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement, {"gid": generation_id})).all()
    return [AssetRecord(*row) for row in rows]


async def orphans(engine: AsyncEngine, *, limit: int) -> list[UUID]:
    """Generations with recorded copies but no row any more (deleted by their owner)."""
    statement = text(
        "SELECT DISTINCT a.generation_id FROM api.generation_assets a WHERE NOT EXISTS "
        "(SELECT 1 FROM api.generations g WHERE g.id = a.generation_id) LIMIT :limit"
    )
    async with engine.connect() as conn:
        return [row[0] for row in (await conn.execute(statement, {"limit": limit})).all()]


async def forget(engine: AsyncEngine, generation_id: UUID) -> None:
    statement = text("DELETE FROM api.generation_assets WHERE generation_id = :gid")
    async with engine.begin() as conn:
        await conn.execute(statement, {"gid": generation_id})
