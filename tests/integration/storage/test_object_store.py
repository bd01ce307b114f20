"""`ObjectStore` against a real S3 server (SeaweedFS): put, ranged get, head, delete, presign."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from genbus.devstack.ports import free_port
from genbus.storage import (
    ByteRange,
    ObjectNotFound,
    ObjectStore,
    RangeNotSatisfiable,
    StorageError,
    StorageSettings,
)
from genbus.storage.settings import MIB

pytestmark = pytest.mark.integration


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_small_object_round_trips_with_size_sha256_and_type(
    object_store: ObjectStore,
) -> None:
    data = os.urandom(100_000)
    stored = await object_store.put_stream(
        "generations/g1/0", _chunks(data, 7_000), content_type="image/png"
    )
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())

    info = await object_store.head("generations/g1/0")
    assert info is not None
    assert (info.size, info.content_type) == (len(data), "image/png")
    async with await object_store.get("generations/g1/0") as body:
        assert body.size == len(data)
        assert await body.read() == data


async def test_large_object_goes_multipart_and_reads_back_by_range(
    storage_settings: StorageSettings,
) -> None:
    settings = storage_settings.model_copy(update={"part_size_bytes": 5 * MIB})
    data = os.urandom(11 * MIB + 123)
    async with ObjectStore(settings) as store:
        stored = await store.put_stream("big", _chunks(data, 256 * 1024), content_type="video/mp4")
        assert stored.size == len(data)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()

        async with await store.get("big") as whole:
            assert hashlib.sha256(await whole.read()).hexdigest() == stored.sha256

        async with await store.get("big", ByteRange(5 * MIB - 10, 5 * MIB + 9)) as part:
            assert part.size == 20
            assert part.total_size == len(data)
            assert part.content_range == f"bytes {5 * MIB - 10}-{5 * MIB + 9}/{len(data)}"
            assert await part.read() == data[5 * MIB - 10 : 5 * MIB + 10]

        async with await store.get("big", ByteRange(len(data) - 5)) as tail:
            assert await tail.read() == data[-5:]

        with pytest.raises(RangeNotSatisfiable):
            await store.get("big", ByteRange(len(data) + 10))


async def test_delete_and_missing_objects(object_store: ObjectStore) -> None:
    await object_store.put_bytes("generations/g2/0", b"a", content_type="image/png")
    await object_store.put_bytes("generations/g2/1", b"b", content_type="image/png")
    await object_store.put_bytes("generations/g3/0", b"c", content_type="image/png")

    await object_store.delete("generations/g3/0")
    assert await object_store.head("generations/g3/0") is None
    with pytest.raises(ObjectNotFound):
        await object_store.get("generations/g3/0")
    await object_store.delete("generations/g3/0")  # deleting nothing is not an error

    assert await object_store.delete_prefix("generations/g2/") == 2
    assert await object_store.head("generations/g2/0") is None
    assert await object_store.head("generations/g2/1") is None


async def test_presigned_get_serves_the_object_without_credentials(
    object_store: ObjectStore,
) -> None:
    await object_store.put_bytes("p/0", b"presigned bytes", content_type="image/jpeg")
    url = await object_store.presign_get("p/0", ttl_s=60)
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.content == b"presigned bytes"
        unsigned = await http.get(url.split("?", 1)[0])
        assert unsigned.status_code == 403


async def test_wrong_credentials_and_unreachable_endpoint_are_storage_errors(
    storage_settings: StorageSettings,
) -> None:
    wrong = storage_settings.model_copy(
        update={"secret_access_key": storage_settings.secret_access_key.__class__("nope")}
    )
    async with ObjectStore(wrong) as store:
        with pytest.raises(StorageError):
            await store.put_bytes("x", b"x", content_type="image/png")

    down = storage_settings.model_copy(
        update={
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "max_attempts": 1,
            "connect_timeout_s": 1.0,
        }
    )
    async with ObjectStore(down) as store:
        with pytest.raises(StorageError):
            await store.head("x")
