"""Uploads for inputs against real Postgres and S3 (SeaweedFS): stored with the type their
bytes show, refused when too large, of the wrong or an unknown type, or over the quota; scoped to
their owner; usable as `inputs[].upload_id`, which reaches the provider as a presigned GET."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from api_harness import Api

from genbus.api.adapters.object_store import SharedStore
from genbus.devstack.ports import free_port
from genbus.storage import ObjectStore, StorageSettings

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
UPLOADS = "/api/v1/uploads"


@pytest.fixture(autouse=True)
def uploads_env(monkeypatch: pytest.MonkeyPatch, storage_settings: StorageSettings) -> None:
    """Set before the `api` fixture builds the app (autouse fixtures come first)."""
    for name, value in storage_settings.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GENBUS_API_UPLOAD_ENABLED", "true")
    monkeypatch.setenv("GENBUS_API_UPLOAD_MAX_BYTES", "10000")
    monkeypatch.setenv("GENBUS_API_UPLOAD_QUOTA_COUNT", "3")
    monkeypatch.setenv("GENBUS_API_UPLOAD_MEDIA_TYPES", "image/png,image/jpeg")


async def _upload(
    client: httpx.AsyncClient, body: bytes, content_type: str = "image/png", **params: str
) -> httpx.Response:
    return await client.post(
        UPLOADS, content=body, headers={"content-type": content_type}, params=params
    )


async def test_an_upload_is_stored_listed_used_as_an_input_and_deleted(
    api: Api, storage_settings: StorageSettings
) -> None:
    created = await _upload(api.client, PNG, filename="cat.png")
    assert created.status_code == 201, created.text
    upload = created.json()
    assert upload["media_type"] == "image/png"
    assert (upload["size_bytes"], upload["filename"]) == (len(PNG), "cat.png")
    assert upload["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert created.headers["location"] == f"{UPLOADS}/{upload['id']}"
    listed = (await api.client.get(UPLOADS)).json()["items"]
    assert [u["id"] for u in listed] == [upload["id"]]
    assert (await api.client.get(f"{UPLOADS}/{upload['id']}")).json() == upload

    other = await api.client_as("mallory")
    assert (await other.get(f"{UPLOADS}/{upload['id']}")).status_code == 404
    assert (await other.get(UPLOADS)).json()["items"] == []
    assert (await other.delete(f"{UPLOADS}/{upload['id']}")).status_code == 404
    theirs = await other.post(
        "/api/v1/generations",
        json={
            "operation_type": "image_to_video",
            "provider_id": "sim",
            "params": {"prompt": "p"},
            "inputs": [{"role": "image", "upload_id": upload["id"]}],
        },
    )
    assert theirs.status_code == 422
    assert theirs.json()["errors"][0]["field"] == "inputs[0].upload_id"
    assert theirs.json()["errors"][0]["code"] == "upload_not_found"

    body = {
        "operation_type": "image_to_video",
        "provider_id": "sim",
        "params": {"prompt": "the cat turns"},
        "inputs": [{"role": "image", "upload_id": upload["id"]}],
    }
    first, second = await api.create(**body), await api.create(**body)
    [given] = first["canonical_inputs"]
    assert given["ref"] == f"upload:{upload['id']}"
    assert first["inputs"] == [{"role": "image", "upload_id": upload["id"]}]
    # The presigned URL differs per request; the reproducible hash does not.
    assert first["reproducible_hash"] == second["reproducible_hash"]
    async with httpx.AsyncClient() as provider:
        fetched = await provider.get(given["url"])
    assert (fetched.status_code, fetched.content) == (200, PNG)

    assert (await api.client.delete(f"{UPLOADS}/{upload['id']}")).status_code == 204
    assert (await api.client.get(f"{UPLOADS}/{upload['id']}")).status_code == 404
    async with ObjectStore(storage_settings) as store:
        assert await store.list_pages("uploads/").__anext__() == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"just some text, not an image" * 20, "image/png", 415, "media_type_unknown"),
        (PNG, "video/mp4", 415, "media_type_mismatch"),
        (b"GIF89a" + os.urandom(400), "image/gif", 415, "media_type_not_allowed"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(20_000), "image/png", 413, "upload_too_large"),
        (b"", "image/png", 422, "upload_empty"),
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_kept(
    api: Api,
    storage_settings: StorageSettings,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    refused = await _upload(api.client, body, content_type)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == code
    assert (await api.client.get(UPLOADS)).json()["items"] == []
    async with ObjectStore(storage_settings) as store:
        assert await store.list_pages("uploads/").__anext__() == []


async def test_a_body_longer_than_declared_limit_is_cut_off(api: Api) -> None:
    """A chunked body (no Content-Length) is counted as it arrives."""

    async def chunks() -> object:
        yield b"\x89PNG\r\n\x1a\n"
        for _ in range(30):
            yield os.urandom(1000)

    refused = await api.client.post(
        UPLOADS, content=chunks(), headers={"content-type": "image/png"}
    )
    assert (refused.status_code, refused.json()["code"]) == (413, "upload_too_large")


async def test_the_quota_counts_each_users_uploads(api: Api) -> None:
    for _ in range(3):
        assert (await _upload(api.client, PNG)).status_code == 201
    over = await _upload(api.client, PNG)
    assert (over.status_code, over.json()["code"]) == (409, "upload_quota_exceeded")
    other = await api.client_as("bob")
    assert (await _upload(other, PNG)).status_code == 201
    first = (await api.client.get(UPLOADS)).json()["items"][0]
    assert (await api.client.delete(f"{UPLOADS}/{first['id']}")).status_code == 204
    assert (await _upload(api.client, PNG)).status_code == 201


async def test_a_bad_filename_is_a_422_naming_it(api: Api) -> None:
    refused = await _upload(api.client, PNG, filename="cat\x00.png")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "filename"


async def test_an_unreachable_store_is_a_503_to_retry(
    api: Api, storage_settings: StorageSettings
) -> None:
    down = storage_settings.model_copy(
        update={"endpoint_url": f"http://127.0.0.1:{free_port()}", "max_attempts": 1}
    )
    api.runtime.object_store = SharedStore(down)
    try:
        refused = await _upload(api.client, PNG)
    finally:
        await api.runtime.object_store.close()
    assert (refused.status_code, refused.json()["code"]) == (503, "service_unavailable")
    assert refused.headers["retry-after"] == "5"
    assert (await api.client.get(UPLOADS)).json()["items"] == []
