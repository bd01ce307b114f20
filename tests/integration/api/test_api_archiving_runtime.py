"""The archiver inside the api's consumers: a completed generation is completed at once (the
provider slot was freed by the dispatcher), its output copied afterwards into S3."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from aiohttp import web
from api_harness import Api, completed_event, eventually

from genbus.api.adapters.asset_queue import AssetRecord, asset_records
from genbus.contracts import COMPLETED
from genbus.devstack.ports import free_port
from genbus.storage import ObjectStore, StorageSettings

pytestmark = pytest.mark.integration

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(20_000)


@pytest.fixture
async def slow_origin() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A provider file server that answers only once `release` is set."""
    release = asyncio.Event()

    async def handle(_: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(body=MP4, headers={"content-type": "video/mp4"})

    app = web.Application()
    app.router.add_get("/out.mp4", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/out.mp4", release
    finally:
        release.set()
        await runner.cleanup()


@pytest.fixture
def archive_env(monkeypatch: pytest.MonkeyPatch, storage_settings: StorageSettings) -> None:
    for name, value in storage_settings.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GENBUS_API_ARCHIVE_ENABLED", "true")
    monkeypatch.setenv("GENBUS_API_ARCHIVE_ALLOW_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("GENBUS_API_ARCHIVE_INTERVAL_S", "0.05")


@pytest.fixture
def archiving_api(archive_env: None, api: Api) -> Api:
    return api


async def test_completion_does_not_wait_for_the_copy(
    archiving_api: Api,
    slow_origin: tuple[str, asyncio.Event],
    storage_settings: StorageSettings,
) -> None:
    api = archiving_api
    url, release = slow_origin
    created = await api.create(
        operation_type="text_to_video", provider_id="sim", params={"prompt": "p"}
    )
    asset = {"url": url, "media_type": "video/mp4"}
    await api.publish(COMPLETED, completed_event(created, asset=asset))
    done = await api.wait_status(created["id"], "completed")
    assert done["asset"]["url"] == url
    engine = api.runtime.engine
    gid = UUID(created["id"])

    # Completed while the copy is still under way (the origin has not answered yet).
    def claimed(records: list[AssetRecord]) -> bool:
        return bool(records) and records[0].status == "pending"

    await eventually(lambda: asset_records(engine, gid), claimed)
    release.set()

    def stored(records: list[AssetRecord]) -> bool:
        return bool(records) and records[0].status == "stored"

    [record] = await eventually(lambda: asset_records(engine, gid), stored)
    assert record.sha256 == hashlib.sha256(MP4).hexdigest()
    async with (
        ObjectStore(storage_settings) as store,
        await store.get(f"generations/{gid}/0") as body,
    ):
        assert await body.read() == MP4
