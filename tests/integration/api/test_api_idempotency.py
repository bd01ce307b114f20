"""Idempotency-Key on POST: a replay returns the original and creates nothing, another body is
409, keys are per user, and concurrent duplicates still create exactly one generation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

import pytest
from api_harness import Api, completed_event

from genbus.contracts import COMPLETED

pytestmark = pytest.mark.integration

BODY = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}}


async def _counts(api: Api) -> tuple[int, int, int, int]:
    return (
        await api.count("generations"),
        await api.count("outbox"),
        await api.count("generation_events"),
        await api.count("idempotency_keys"),
    )


@pytest.mark.parametrize("path", ["/api/v1/generations", "/api/v1/jobs"])
async def test_a_replay_returns_the_original_and_creates_nothing(api: Api, path: str) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await api.client.post(path, json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    after_first = await _counts(api)
    assert after_first == (1, 1, 1, 1)

    again = await api.client.post(path, json=BODY, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["id"] == first.json()["id"]
    assert await _counts(api) == after_first

    # The replay shows the generation as it is now.
    await api.publish(COMPLETED, completed_event(first.json()))
    await api.wait_status(first.json()["id"], "completed")
    later = await api.client.post(path, json=BODY, headers=headers)
    assert (later.status_code, later.json()["status"]) == (200, "completed")
    assert await _counts(api) == (1, 1, 2, 1)


async def test_the_same_key_with_another_body_is_409(api: Api) -> None:
    headers = {"Idempotency-Key": "k1"}
    assert (await api.client.post("/api/v1/generations", json=BODY, headers=headers)).is_success
    before = await _counts(api)
    other = {**BODY, "params": {"prompt": "something else"}}
    for path, body in (("/api/v1/generations", other), ("/api/v1/jobs", BODY)):
        response = await api.client.post(path, json=body, headers=headers)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "idempotency_key_reused"
    assert await _counts(api) == before


async def test_keys_are_scoped_per_user(api: Api) -> None:
    headers = {"Idempotency-Key": "shared-name"}
    mine = await api.client.post("/api/v1/generations", json=BODY, headers=headers)
    other = await api.client_as("mallory")
    theirs = await other.post("/api/v1/generations", json=BODY, headers=headers)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert await api.count("generations") == 2


async def test_concurrent_duplicates_create_one_generation(api: Api) -> None:
    headers = {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(api.client.post("/api/v1/generations", json=BODY, headers=headers) for _ in range(12))
    )
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _counts(api) == (1, 1, 1, 1)


async def test_an_invalid_request_does_not_use_up_the_key(api: Api) -> None:
    headers = {"Idempotency-Key": "fix-and-resend"}
    bad = await api.client.post(
        "/api/v1/generations", json={**BODY, "params": {"prompt": ""}}, headers=headers
    )
    assert bad.status_code == 422
    assert await _counts(api) == (0, 0, 0, 0)
    good = await api.client.post("/api/v1/generations", json=BODY, headers=headers)
    assert good.status_code == 201


async def test_a_key_is_forgotten_after_its_retention_or_with_its_generation(api: Api) -> None:
    headers = {"Idempotency-Key": "old"}
    first = (await api.client.post("/api/v1/generations", json=BODY, headers=headers)).json()
    ttl = api.runtime.limits.idempotency_ttl
    assert ttl >= timedelta(hours=24)
    # Within the retention it still replays...
    await api.fetch(
        "UPDATE api.idempotency_keys SET created_at = created_at - $1::interval",
        ttl - timedelta(minutes=1),
    )
    assert (
        await api.client.post("/api/v1/generations", json=BODY, headers=headers)
    ).status_code == 200
    # ...past it, the key names nothing any more.
    await api.fetch("UPDATE api.idempotency_keys SET created_at = created_at - interval '2 min'")
    second = await api.client.post("/api/v1/generations", json=BODY, headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]

    # Deleting a generation forgets its key.
    await api.publish(COMPLETED, completed_event(second.json()))
    await api.wait_status(second.json()["id"], "completed")
    assert (
        await api.client.delete(f"/api/v1/generations/{second.json()['id']}")
    ).status_code == 204
    rows = await api.fetch(
        "SELECT * FROM api.idempotency_keys WHERE generation_id = $1", UUID(second.json()["id"])
    )
    assert rows == []
    assert (
        await api.client.post("/api/v1/generations", json=BODY, headers=headers)
    ).status_code == 201


@pytest.mark.parametrize("key", [b"", b"has space", b"x" * 256, "é".encode()])
async def test_a_malformed_key_is_422_naming_the_header(api: Api, key: bytes) -> None:
    response = await api.client.post(
        "/api/v1/generations", json=BODY, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
    assert await api.count("generations") == 0
