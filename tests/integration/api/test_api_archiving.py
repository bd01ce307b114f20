"""The archiver against real Postgres, S3 (SeaweedFS) and a provider's file server: completed
outputs are copied with size and sha256, refused ones and spent budgets recorded as
`asset_archive_failed`, a store outage retried until the copy is made."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.__main__ import MIGRATIONS
from genbus.api.adapters.asset_queue import asset_records
from genbus.api.service_layer.archiving import ArchivePolicy, archive_once
from genbus.devstack.ports import free_port
from genbus.runtime.addresses import AddressPolicy
from genbus.runtime.db import create_engine
from genbus.runtime.migrations import upgrade_to_head
from genbus.storage import ObjectStore, StorageSettings
from genbus.storage.fetch import FetchLimits, SafeFetcher

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(4000)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _serve(body: bytes, content_type: str, status: int = 200) -> Handler:
    async def handle(_: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status, headers={"content-type": content_type})

    return handle


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/out.png", _serve(PNG, "image/png"))
    app.router.add_get("/page.png", _serve(b"<html></html>", "image/png"))
    app.router.add_get("/busy.png", _serve(b"", "text/plain", status=503))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


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
    fetcher = SafeFetcher(AddressPolicy.from_strings(["127.0.0.0/8"]), FetchLimits(1_000_000))
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


async def _completed(engine: AsyncEngine, url: str, media_type: str = "image/png") -> uuid.UUID:
    gid = uuid.uuid4()
    now = datetime.now(UTC)
    empty = json.dumps({})
    asset = json.dumps({"url": url, "media_type": media_type})
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO api.generations (id, user_id, operation_type, provider_id, status,"
                " params, canonical_params, inputs, canonical_inputs, priority, deadline_at,"
                " reproducible_hash, metadata, attempt, asset, created_at, updated_at,"
                " completed_at) VALUES (:id, 'u1', 'text_to_image', 'sim', 'completed',"
                " CAST(:e AS jsonb), CAST(:e AS jsonb), '[]', '[]', 5, :now, 'h',"
                " CAST(:e AS jsonb), 1, CAST(:asset AS jsonb), :now, :now, :now)"
            ),
            {"id": gid, "e": empty, "now": now, "asset": asset},
        )
    return gid


def _clock() -> Callable[[], datetime]:
    """A clock that also moves when told to (backoffs without sleeping)."""
    offset = [timedelta(0)]

    def now() -> datetime:
        return datetime.now(UTC) + offset[0]

    now.offset = offset  # type: ignore[attr-defined]
    return now


async def test_outputs_are_archived_and_refusals_recorded(
    engine: AsyncEngine, object_store: ObjectStore, fetcher: SafeFetcher, origin: str
) -> None:
    good = await _completed(engine, f"{origin}/out.png")
    page = await _completed(engine, f"{origin}/page.png")
    video = await _completed(engine, f"{origin}/out.png", media_type="video/mp4")
    policy = ArchivePolicy(batch=10)

    assert await archive_once(engine, object_store, fetcher, policy, _clock()) == 3
    assert await archive_once(engine, object_store, fetcher, policy, _clock()) == 0

    [stored] = await asset_records(engine, good)
    assert (stored.status, stored.size, stored.media_type) == ("stored", len(PNG), "image/png")
    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    assert stored.object_key == f"generations/{good}/0"
    async with await object_store.get(stored.object_key) as body:
        assert await body.read() == PNG

    for gid, reason in ((page, "media_type_unknown"), (video, "media_type_mismatch")):
        [failed] = await asset_records(engine, gid)
        assert (failed.status, failed.error_code) == ("failed", "asset_archive_failed")
        assert reason in (failed.error_detail or "")
        assert await object_store.head(f"generations/{gid}/0") is None


async def test_store_down_is_retried_until_it_is_back(
    engine: AsyncEngine,
    storage_settings: StorageSettings,
    fetcher: SafeFetcher,
    origin: str,
) -> None:
    gid = await _completed(engine, f"{origin}/out.png")
    clock = _clock()
    down = storage_settings.model_copy(
        update={"endpoint_url": f"http://127.0.0.1:{free_port()}", "max_attempts": 1}
    )
    policy = ArchivePolicy(base_backoff_s=60)
    async with ObjectStore(down) as unreachable:
        assert await archive_once(engine, unreachable, fetcher, policy, clock) == 1
        [pending] = await asset_records(engine, gid)
        assert pending.status == "pending"
        assert "StorageError" in (pending.error_detail or "")
        # Not due again before its backoff.
        assert await archive_once(engine, unreachable, fetcher, policy, clock) == 0

    clock.offset[0] = timedelta(seconds=61)  # type: ignore[attr-defined]
    async with ObjectStore(storage_settings) as store:
        assert await archive_once(engine, store, fetcher, policy, clock) == 1
        [stored] = await asset_records(engine, gid)
        assert stored.status == "stored"
        assert stored.sha256 == hashlib.sha256(PNG).hexdigest()


async def test_a_spent_budget_is_recorded_not_dropped(
    engine: AsyncEngine, object_store: ObjectStore, fetcher: SafeFetcher, origin: str
) -> None:
    gid = await _completed(engine, f"{origin}/busy.png")
    clock = _clock()
    policy = ArchivePolicy(max_attempts=2, base_backoff_s=1)
    assert await archive_once(engine, object_store, fetcher, policy, clock) == 1
    [first] = await asset_records(engine, gid)
    assert first.status == "pending"
    clock.offset[0] = timedelta(seconds=5)  # type: ignore[attr-defined]
    assert await archive_once(engine, object_store, fetcher, policy, clock) == 1
    [failed] = await asset_records(engine, gid)
    assert (failed.status, failed.error_code) == ("failed", "asset_archive_failed")
    assert "503" in (failed.error_detail or "")
