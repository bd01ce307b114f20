"""The lifecycle of stored objects besides deleting one generation: retention (old terminal
generations and uploads expire with their objects) and the orphan sweep (an object under
`generations/` or `uploads/` that no row names, older than a grace period, is deleted)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.adapters import retention, upload_rows
from genbus.runtime.logging import get_logger
from genbus.storage import ObjectStore

log = get_logger(__name__)

GENERATIONS_PREFIX, UPLOADS_PREFIX = "generations/", "uploads/"


@dataclass(frozen=True)
class LifecyclePolicy:
    #: None: keep generations and uploads until their owner deletes them.
    retention: timedelta | None = None
    #: Rows per retention transaction (generations, then uploads).
    batch: int = 200
    orphan_grace: timedelta = timedelta(hours=24)
    orphan_interval_s: float = 3600.0


async def expire(
    engine: AsyncEngine, store: ObjectStore, policy: LifecyclePolicy, *, now: datetime
) -> int:
    """One batch of each: generations that ended before the retention period (their objects
    go with `archiving.remove_deleted`), then uploads (rows, then objects). Returns how many."""
    if policy.retention is None:
        return 0
    before = now - policy.retention
    generations = await retention.expire_generations(engine, before=before, limit=policy.batch)
    keys = await upload_rows.remove_older(engine, before=before, limit=policy.batch)
    for key in keys:
        await store.delete(key)
    if generations or keys:
        log.info("expired by retention", generations=len(generations), uploads=len(keys))
    return len(generations) + len(keys)


def _generation_id(key: str) -> UUID | None:
    """The generation of a `generations/<id>/<n>` key; None for a key of another shape."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != GENERATIONS_PREFIX.rstrip("/"):
        return None
    try:
        return UUID(parts[1])
    except ValueError:
        return None


async def _live_generation_keys(engine: AsyncEngine, keys: Sequence[str]) -> set[str]:
    ids = {key: _generation_id(key) for key in keys}
    known = await retention.known_generations(engine, [i for i in ids.values() if i is not None])
    # A key not of our shape is not ours to judge: kept.
    return {key for key, gid in ids.items() if gid is None or gid in known}


async def _live_upload_keys(engine: AsyncEngine, keys: Sequence[str]) -> set[str]:
    return await upload_rows.known_keys(engine, keys)


async def sweep_orphans(
    engine: AsyncEngine, store: ObjectStore, *, grace: timedelta, now: datetime
) -> int:
    """Delete objects no row names, last written more than `grace` ago; returns how many."""
    removed = 0
    checks: tuple[tuple[str, Callable[[AsyncEngine, Sequence[str]], Awaitable[set[str]]]], ...] = (
        (GENERATIONS_PREFIX, _live_generation_keys),
        (UPLOADS_PREFIX, _live_upload_keys),
    )
    for prefix, live in checks:
        async for page in store.list_pages(prefix):
            old = [o.key for o in page if o.last_modified < now - grace]
            kept = await live(engine, old)
            for key in old:
                if key not in kept:
                    await store.delete(key)
                    removed += 1
    if removed:
        log.info("orphaned objects removed", count=removed)
    return removed
