"""The archiver inside the api's consumers: a completed generation is completed at once (the
provider slot was freed by the dispatcher), its output copied afterwards into S3."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest
from aiohttp import web
from api_harness import Api, completed_event, eventually

from genbus.api.adapters.asset_queue import AssetRecord, asset_records
from genbus.api.adapters.object_store import SharedStore
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
    # Until the copy is made the response says the URL is the provider's, expiring.
    assert done["asset"]["url"] == done["asset"]["provider_url"] == url
    assert (done["asset"]["stored"], done["asset"]["expires"]) == (False, True)
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


async def test_stored_output_is_served_by_genbus_and_goes_with_its_generation(
    archiving_api: Api, slow_origin: tuple[str, asyncio.Event], storage_settings: StorageSettings
) -> None:
    api = archiving_api
    url, release = slow_origin
    release.set()
    created = await api.create(
        operation_type="text_to_video", provider_id="sim", params={"prompt": "p"}
    )
    path = f"/api/v1/generations/{created['id']}/asset"
    missing = await api.client.get(path)
    assert missing.status_code == 404
    assert missing.json()["code"] == "asset_not_stored"

    asset = {"url": url, "media_type": "video/mp4"}
    await api.publish(COMPLETED, completed_event(created, asset=asset))
    await api.wait_status(created["id"], "completed")

    async def download() -> httpx.Response:
        return await api.client.get(path)

    whole = await eventually(download, lambda r: r.status_code == 200)
    assert whole.content == MP4
    assert whole.headers["content-type"] == "video/mp4"
    digest = hashlib.sha256(MP4).hexdigest()
    assert whole.headers["etag"] == f'"{digest}"'

    # The generation now points at genbus's copy, and its change is in the live-status log.
    shown = (await api.get(created["id"]))["asset"]
    assert (shown["url"], shown["provider_url"]) == (path, url)
    assert (shown["stored"], shown["expires"], shown["sha256"]) == (True, False, digest)
    assert shown["size_bytes"] == len(MP4)
    rows = await api.fetch(
        "SELECT payload FROM api.generation_events WHERE generation_id = $1 ORDER BY id",
        UUID(created["id"]),
    )
    assert json.loads(rows[-1]["payload"])["asset"]["stored"] is True
    listed = (await api.client.get("/api/v1/generations")).json()["items"]
    assert [g["asset"]["url"] for g in listed if g["id"] == created["id"]] == [path]

    # An input naming it reaches the provider as a presigned GET of the stored copy.
    follow_up = await api.create(
        operation_type="image_to_video",
        provider_id="sim",
        params={"prompt": "p"},
        inputs=[{"role": "image", "generation_id": created["id"]}],
    )
    [given] = follow_up["canonical_inputs"]
    assert given["ref"] == f"generation:{created['id']}"
    assert given["url"].startswith(storage_settings.endpoint_url)
    async with httpx.AsyncClient() as anyone:
        fetched = await anyone.get(given["url"])
    assert (fetched.status_code, fetched.content) == (200, MP4)

    part = await api.client.get(path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == MP4[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(MP4)}"
    tail = await api.client.get(path, headers={"Range": "bytes=-5"})
    assert tail.content == MP4[-5:]
    beyond = await api.client.get(path, headers={"Range": f"bytes={len(MP4)}-"})
    assert beyond.status_code == 416

    other = await api.client_as("someone-else")
    assert (await other.get(path)).status_code == 404

    # The store unreachable: a 503 to retry, not a 500.
    live_store = api.runtime.object_store
    dead = f"http://127.0.0.1:{free_port()}"
    api.runtime.object_store = SharedStore(
        storage_settings.model_copy(update={"endpoint_url": dead, "max_attempts": 1})
    )
    try:
        down = await api.client.get(path)
    finally:
        await api.runtime.object_store.close()
        api.runtime.object_store = live_store
    assert (down.status_code, down.headers["retry-after"]) == (503, "5")

    assert (await api.client.delete(f"/api/v1/generations/{created['id']}")).status_code == 204
    assert (await api.client.get(path)).status_code == 404
    async with ObjectStore(storage_settings) as store:
        key = f"generations/{created['id']}/0"
        await eventually(lambda: store.head(key), lambda info: info is None)
        gid = UUID(created["id"])
        await eventually(lambda: asset_records(api.runtime.engine, gid), lambda rows: rows == [])
