"""API keys and isolation through the real app: keys are stored as digests only; a user never
reaches another user's generations (404, never 403, never listed or streamed); admins may read;
each key is rate limited."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest
from api_harness import USER, Api, completed_event
from fastapi import FastAPI

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.api.service_layer.api_keys import list_api_keys, revoke_api_key
from genbus.contracts import COMPLETED

pytestmark = pytest.mark.integration

T2V = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}}


async def test_keys_are_stored_as_digests_never_in_plaintext(api: Api) -> None:
    secret = await api.new_key("alice", admin=True)
    assert secret.startswith("gbk_")
    assert len(secret) == 47

    rows = await api.fetch("SELECT * FROM api.api_keys WHERE user_id = 'alice'")
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["prefix"] == secret[:12]
    assert row["admin"] is True
    # No column holds the key, or anything longer than its display prefix.
    for value in row.values():
        assert secret not in str(value)
        assert secret[12:] not in str(value)
    dump = await api.fetch("SELECT row_to_json(k)::text AS j FROM api.api_keys k")
    assert all(secret[4:] not in r["j"] for r in dump)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer gbk_" + "A" * 43,  # well formed, unknown
    ],
    ids=["missing", "no-credentials", "empty", "basic", "malformed", "unknown"],
)
async def test_requests_without_a_valid_key_are_401(api: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://api.test", headers=headers
    ) as client:
        for response in (
            await client.get("/api/v1/generations"),
            await client.post("/api/v1/jobs", json=T2V),
            await client.get("/api/v1/events"),
        ):
            assert response.status_code == 401, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["code"] == "unauthorized"
    assert await api.count("generations") == 0
    # Health probes need no key.
    assert (await api.client.get("/healthz")).status_code == 200


async def test_a_revoked_key_stops_working_at_once(api: Api) -> None:
    client = await api.client_as("bob")
    assert (await client.get("/api/v1/generations")).status_code == 200
    (key,) = await list_api_keys(api.runtime.uow(), user_id="bob")
    revoked = await revoke_api_key(api.runtime.uow(), key.id, now=datetime.now(UTC))
    assert revoked.revoked_at is not None
    response = await client.get("/api/v1/generations")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_another_users_generation_is_invisible_and_untouchable(api: Api) -> None:
    mine = await api.create(**T2V)
    failed = await api.create(**T2V)
    await api.publish(COMPLETED, completed_event(failed, "failed"))
    await api.wait_status(failed["id"], "failed")
    mallory = await api.client_as("mallory")
    outbox_before = await api.count("outbox")

    for generation in (mine, failed):
        gid = generation["id"]
        for response in (
            await mallory.get(f"/api/v1/generations/{gid}"),
            await mallory.get(f"/api/v1/jobs/{gid}"),
            await mallory.get(f"/api/v1/generations/{gid}/events"),
            await mallory.post(f"/api/v1/generations/{gid}/cancel"),
            await mallory.post(f"/api/v1/generations/{gid}/retry"),
            await mallory.delete(f"/api/v1/generations/{gid}"),
            await mallory.delete(f"/api/v1/jobs/{gid}"),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "generation_not_found"
    for path in ("/api/v1/generations", "/api/v1/jobs"):
        listed = await mallory.get(path)
        assert listed.status_code == 200
        assert listed.json() == {"items": [], "next_cursor": None}
    # A generation of another user cannot be used as an input either.
    as_input = await mallory.post(
        "/api/v1/generations",
        json={
            "operation_type": "image_to_video",
            "provider_id": "sim",
            "inputs": [{"role": "image", "generation_id": mine["id"]}],
        },
    )
    assert as_input.status_code == 422
    assert as_input.json()["errors"][0]["code"] == "generation_not_found"

    assert (await api.get(mine["id"]))["status"] == "pending"
    assert (await api.get(failed["id"]))["status"] == "failed"
    assert await api.count("generations") == 2
    assert await api.count("outbox") == outbox_before
    listed = (await api.client.get("/api/v1/generations")).json()["items"]
    assert {g["id"] for g in listed} == {mine["id"], failed["id"]}


async def test_an_admin_key_reads_anyones_generation_but_acts_only_on_its_own(api: Api) -> None:
    theirs = await api.create(**T2V)
    admin = await api.client_as("root", admin=True)

    read = await admin.get(f"/api/v1/generations/{theirs['id']}")
    assert read.status_code == 200
    assert read.json()["user_id"] == USER
    assert (await admin.get(f"/api/v1/jobs/{theirs['id']}")).status_code == 200
    assert (await admin.get("/api/v1/generations")).json()["items"] == []
    assert (await admin.post(f"/api/v1/generations/{theirs['id']}/cancel")).status_code == 404
    assert (await api.get(theirs["id"]))["status"] == "pending"


@pytest.fixture
async def strict_app(api: Api, api_settings: ApiSettings) -> AsyncIterator[FastAPI]:
    """A second app on `api`'s database, limited to 2 requests/s with bursts of 3 per key."""
    app = create_app(api_settings.model_copy(update={"rate_limit_per_s": 2, "rate_limit_burst": 3}))
    async with app.router.lifespan_context(app):
        yield app


async def test_each_key_is_rate_limited_with_retry_after(api: Api, strict_app: FastAPI) -> None:
    first = {"Authorization": f"Bearer {await api.new_key('a')}"}
    second = {"Authorization": f"Bearer {await api.new_key('a')}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=strict_app), base_url="http://api.test"
    ) as client:
        statuses = [
            (await client.get("/api/v1/generations", headers=first)).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        limited = await client.get("/api/v1/generations", headers=first)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # Another key (even of the same user) has its own bucket; probes are never limited.
        assert (await client.get("/api/v1/generations", headers=second)).status_code == 200
        assert (await client.get("/healthz")).status_code == 200


async def test_anonymous_requests_act_as_the_default_user_only_when_allowed(
    api: Api, api_settings: ApiSettings
) -> None:
    created = await api.create(**T2V)
    app = create_app(api_settings.model_copy(update={"allow_anonymous": True}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client,
    ):
        response = await client.get(f"/api/v1/jobs/{created['id']}")
        assert response.status_code == 200
        assert response.json()["user_id"] == USER
        # A wrong key is still refused: anonymity is only for requests without one.
        bad = await client.get("/api/v1/jobs", headers={"Authorization": "Bearer gbk_x"})
        assert bad.status_code == 401
    rows = await api.fetch("SELECT user_id FROM api.generations WHERE id = $1", UUID(created["id"]))
    assert rows[0]["user_id"] == USER
