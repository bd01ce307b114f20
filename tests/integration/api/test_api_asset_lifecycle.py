"""Retention and the orphan sweep against real Postgres and S3 (SeaweedFS): old generations
and uploads go with their objects in bounded batches, recent ones stay; objects no row names
are removed once past the grace period, never before."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.__main__ import MIGRATIONS
from genbus.api.adapters import upload_rows
from genbus.api.adapters.asset_queue import asset_records
from genbus.api.adapters.upload_rows import Upload
from genbus.api.service_layer.archiving import ArchivePolicy, archive_once
from genbus.api.service_layer.lifecycle import LifecyclePolicy, sweep_orphans
from genbus.runtime.addresses import AddressPolicy
from genbus.runtime.db import create_engine
from genbus.runtime.migrations import upgrade_to_head
from genbus.storage import ObjectStore
from genbus.storage.fetch import FetchLimits, SafeFetcher

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500
NOW = datetime.now(UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, database_url, "api")
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    fetcher = SafeFetcher(AddressPolicy.from_strings([]), FetchLimits(1_000_000))
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


async def _stored_generation(
    engine: AsyncEngine, store: ObjectStore, *, ended: datetime, status: str = "completed"
) -> uuid.UUID:
    """A generation that ended at `ended`, with a stored copy (when completed)."""
    gid = uuid.uuid4()
    empty = json.dumps({})
    asset = json.dumps({"url": "https://cdn.example/x.png", "media_type": "image/png"})
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO api.generations (id, user_id, operation_type, provider_id, status,"
                " params, canonical_params, inputs, canonical_inputs, priority, deadline_at,"
                " reproducible_hash, metadata, attempt, asset, created_at, updated_at,"
                " completed_at) VALUES (:id, 'u1', 'text_to_image', 'sim', :status,"
                " CAST(:e AS jsonb), CAST(:e AS jsonb), '[]', '[]', 5, :at, 'h',"
                " CAST(:e AS jsonb), 1, CAST(:asset AS jsonb), :at, :at, :at)"
            ),
            {"id": gid, "e": empty, "at": ended, "asset": asset, "status": status},
        )
        await conn.execute(
            text(
                "INSERT INTO api.generation_assets (generation_id, n, user_id, source_url,"
                " expected_media_type, status, attempts, next_attempt_at, object_key, size,"
                " sha256, media_type, created_at, updated_at) VALUES (:id, 0, 'u1', 'x',"
                " 'image/png', 'stored', 1, :at, :key, 1, 'h', 'image/png', :at, :at)"
            ),
            {"id": gid, "at": ended, "key": f"generations/{gid}/0"},
        )
    await store.put_bytes(f"generations/{gid}/0", PNG, content_type="image/png")
    return gid


async def _upload(engine: AsyncEngine, store: ObjectStore, *, at: datetime) -> Upload:
    upload_id = uuid.uuid4()
    upload = Upload(
        upload_id, "u1", f"uploads/u1/{upload_id}", len(PNG), "h", "image/png", None, at
    )
    assert await upload_rows.add_within(engine, upload, max_count=100, max_bytes=10**9)
    await store.put_bytes(upload.object_key, PNG, content_type="image/png")
    return upload


async def _generation_exists(engine: AsyncEngine, gid: uuid.UUID) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(text("SELECT 1 FROM api.generations WHERE id = :id"), {"id": gid})
    return found is not None


async def test_retention_expires_old_generations_and_uploads_with_their_objects(
    engine: AsyncEngine, object_store: ObjectStore, fetcher: SafeFetcher
) -> None:
    old = [await _stored_generation(engine, object_store, ended=NOW - timedelta(days=40))]
    old.append(await _stored_generation(engine, object_store, ended=NOW - timedelta(days=31)))
    recent = await _stored_generation(engine, object_store, ended=NOW - timedelta(days=29))
    old_upload = await _upload(engine, object_store, at=NOW - timedelta(days=35))
    new_upload = await _upload(engine, object_store, at=NOW - timedelta(days=1))
    lifecycle = LifecyclePolicy(retention=timedelta(days=30), batch=1)

    def clock() -> datetime:
        return datetime.now(UTC)

    # Bounded: one generation and one upload per pass; objects go in the same pass.
    assert await archive_once(engine, object_store, fetcher, ArchivePolicy(), clock, lifecycle)
    assert [await _generation_exists(engine, g) for g in old] == [False, True]
    assert await object_store.head(f"generations/{old[0]}/0") is None
    assert await asset_records(engine, old[0]) == []
    assert await object_store.head(old_upload.object_key) is None
    assert await upload_rows.get(engine, old_upload.id, "u1") is None

    await archive_once(engine, object_store, fetcher, ArchivePolicy(), clock, lifecycle)
    assert not await _generation_exists(engine, old[1])
    assert await object_store.head(f"generations/{old[1]}/0") is None

    assert await _generation_exists(engine, recent)
    assert await object_store.head(f"generations/{recent}/0") is not None
    assert await upload_rows.get(engine, new_upload.id, "u1") is not None
    assert await object_store.head(new_upload.object_key) is not None


async def test_without_retention_nothing_expires(
    engine: AsyncEngine, object_store: ObjectStore, fetcher: SafeFetcher
) -> None:
    gid = await _stored_generation(engine, object_store, ended=NOW - timedelta(days=4000))

    def clock() -> datetime:
        return datetime.now(UTC)

    await archive_once(engine, object_store, fetcher, ArchivePolicy(), clock, LifecyclePolicy())
    assert await _generation_exists(engine, gid)
    assert await object_store.head(f"generations/{gid}/0") is not None


async def test_orphans_are_swept_after_the_grace_period_and_owned_objects_kept(
    engine: AsyncEngine, object_store: ObjectStore
) -> None:
    kept = await _stored_generation(engine, object_store, ended=NOW)
    upload = await _upload(engine, object_store, at=NOW)
    orphans = [f"generations/{uuid.uuid4()}/0", f"uploads/u1/{uuid.uuid4()}"]
    for key in orphans:
        await object_store.put_bytes(key, PNG, content_type="image/png")
    foreign = "generations/not-a-generation/readme.txt"
    await object_store.put_bytes(foreign, b"x", content_type="text/plain")

    # Within the grace period nothing is touched (it may be an upload being recorded).
    grace = timedelta(hours=1)
    assert await sweep_orphans(engine, object_store, grace=grace, now=datetime.now(UTC)) == 0
    assert all([await object_store.head(k) is not None for k in orphans])

    later = datetime.now(UTC) + timedelta(hours=2)
    assert await sweep_orphans(engine, object_store, grace=grace, now=later) == 2
    assert [await object_store.head(k) for k in orphans] == [None, None]
    assert await object_store.head(f"generations/{kept}/0") is not None
    assert await object_store.head(upload.object_key) is not None
    assert await object_store.head(foreign) is not None
