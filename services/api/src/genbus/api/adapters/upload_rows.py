"""SQL for `uploads`: a user's stored input files. A new upload is recorded under the user's
advisory lock after its quota is checked again, so two uploads at once never both pass it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from genbus.api.adapters.asset_tables import uploads

_t = uploads
#: The first key of the per-user lock of upload quota checks.
_LOCK_CLASS = 0x7570_6C64  # "upld"


@dataclass(frozen=True)
class Upload:
    id: UUID
    user_id: str
    object_key: str
    size: int
    sha256: str
    media_type: str
    filename: str | None
    created_at: datetime


@dataclass(frozen=True)
class Usage:
    count: int
    bytes: int


def _upload(row: object) -> Upload:
    return Upload(*row)  # type: ignore[misc]


_COLUMNS = (
    _t.c.id,
    _t.c.user_id,
    _t.c.object_key,
    _t.c.size,
    _t.c.sha256,
    _t.c.media_type,
    _t.c.filename,
    _t.c.created_at,
)


async def _usage(conn: AsyncConnection, user_id: str) -> Usage:
    query = select(func.count(), func.coalesce(func.sum(_t.c.size), 0)).where(
        _t.c.user_id == user_id
    )
    count, total = (await conn.execute(query)).one()
    return Usage(int(count), int(total))


async def usage(engine: AsyncEngine, user_id: str) -> Usage:
    async with engine.connect() as conn:
        return await _usage(conn, user_id)


async def add_within(
    engine: AsyncEngine, upload: Upload, *, max_count: int, max_bytes: int
) -> Usage | None:
    """Record `upload` if the user's uploads stay within the quota with it; else None and
    nothing recorded. Returns the usage with it."""
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:cls, hashtext(:user))"),
            {"cls": _LOCK_CLASS, "user": upload.user_id},
        )
        now = await _usage(conn, upload.user_id)
        if now.count + 1 > max_count or now.bytes + upload.size > max_bytes:
            return None
        await conn.execute(
            _t.insert().values(
                id=upload.id,
                user_id=upload.user_id,
                object_key=upload.object_key,
                size=upload.size,
                sha256=upload.sha256,
                media_type=upload.media_type,
                filename=upload.filename,
                created_at=upload.created_at,
            )
        )
    return Usage(now.count + 1, now.bytes + upload.size)


async def get(engine: AsyncEngine, upload_id: UUID, user_id: str) -> Upload | None:
    query = select(*_COLUMNS).where(_t.c.id == upload_id, _t.c.user_id == user_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return _upload(row) if row is not None else None


async def get_many(engine: AsyncEngine, ids: Sequence[UUID], user_id: str) -> dict[UUID, Upload]:
    """The user's uploads among `ids` (another user's, or a missing one, is absent)."""
    if not ids:
        return {}
    query = select(*_COLUMNS).where(_t.c.id.in_(list(set(ids))), _t.c.user_id == user_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {u.id: u for u in map(_upload, rows)}


async def list_newest(engine: AsyncEngine, user_id: str, *, limit: int) -> list[Upload]:
    query = (
        select(*_COLUMNS)
        .where(_t.c.user_id == user_id)
        .order_by(_t.c.created_at.desc(), _t.c.id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [_upload(row) for row in (await conn.execute(query)).all()]


async def remove(engine: AsyncEngine, upload_id: UUID, user_id: str) -> Upload | None:
    """Delete the row (the caller deletes the object); None when there was none."""
    statement = delete(_t).where(_t.c.id == upload_id, _t.c.user_id == user_id).returning(*_COLUMNS)
    async with engine.begin() as conn:
        row = (await conn.execute(statement)).first()
    return _upload(row) if row is not None else None


async def remove_older(engine: AsyncEngine, *, before: datetime, limit: int) -> list[str]:
    """Delete up to `limit` uploads created before `before`; their object keys."""
    oldest = select(_t.c.id).where(_t.c.created_at < before).order_by(_t.c.created_at)
    statement = (
        delete(_t)
        .where(_t.c.id.in_(oldest.limit(limit).with_for_update(skip_locked=True).scalar_subquery()))
        .returning(_t.c.object_key)
    )
    async with engine.begin() as conn:
        return [str(row[0]) for row in (await conn.execute(statement)).all()]


async def known_keys(engine: AsyncEngine, keys: Sequence[str]) -> set[str]:
    """Which of `keys` an upload row names."""
    if not keys:
        return set()
    query = select(_t.c.object_key).where(_t.c.object_key.in_(list(keys)))
    async with engine.connect() as conn:
        return {str(row[0]) for row in (await conn.execute(query)).all()}
