"""Retry and delete, and the legacy DELETE-as-cancel."""

from __future__ import annotations

from uuid import UUID

import pytest
from api_harness import Api, completed_event, submitted_event

from genbus.contracts import (
    COMPLETED,
    DEAD_LETTER_STREAM,
    REQUESTED,
    SUBMITTED,
    GenerationRequested,
)
from genbus.contracts.topology import API_COMPLETED

pytestmark = pytest.mark.integration

BODY = {
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "p", "seed": 7},
    "priority": 9,
    "name": "n",
    "metadata": {"k": "v"},
    "prompt_version_id": "pv-1",
}


async def _ended(api: Api, status: str) -> dict[str, object]:
    created = await api.create(**BODY)
    await api.publish(COMPLETED, completed_event(created, status))
    return await api.wait_status(str(created["id"]), status)


@pytest.mark.parametrize("status", ["failed", "cancelled"])
async def test_retry_creates_a_linked_generation_with_the_same_request(
    api: Api, status: str
) -> None:
    sub = await api.js.subscribe(REQUESTED.wildcard, ordered_consumer=True)
    parent = await _ended(api, status)

    response = await api.client.post(f"/api/v1/generations/{parent['id']}/retry")
    assert response.status_code == 201, response.text
    child = response.json()
    assert response.headers["location"] == f"/api/v1/generations/{child['id']}"
    assert child["parent_generation_id"] == parent["id"]
    assert child["id"] != parent["id"]
    assert child["status"] == "pending"
    for same in ("operation_type", "provider_id", "params", "canonical_params", "priority"):
        assert child[same] == parent[same]
    for same in ("name", "metadata", "prompt_version_id", "reproducible_hash"):
        assert child[same] == parent[same]
    assert child["attempt"] == 0

    requested = [GenerationRequested.model_validate_json((await sub.next_msg(10)).data)]
    requested.append(GenerationRequested.model_validate_json((await sub.next_msg(10)).data))
    assert [str(e.generation_id) for e in requested] == [parent["id"], child["id"]]


async def test_retry_of_a_generation_that_did_not_fail_is_409(api: Api) -> None:
    pending = await api.create(**BODY)
    processing = await api.create(**BODY)
    await api.publish(SUBMITTED, submitted_event(processing))
    await api.wait_status(processing["id"], "processing")
    completed = await _ended(api, "completed")
    before = await api.count("generations")
    for generation in (pending, processing, completed):
        response = await api.client.post(f"/api/v1/generations/{generation['id']}/retry")
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "generation_not_retryable"
    assert await api.count("generations") == before


async def test_retry_accepts_an_idempotency_key(api: Api) -> None:
    parent = await _ended(api, "failed")
    headers = {"Idempotency-Key": "retry-once"}
    url = f"/api/v1/generations/{parent['id']}/retry"
    first = await api.client.post(url, headers=headers)
    again = await api.client.post(url, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert await api.count("generations") == 2


async def test_delete_removes_a_terminal_generation_and_its_history(api: Api) -> None:
    done = await _ended(api, "completed")
    response = await api.client.delete(f"/api/v1/generations/{done['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await api.client.get(f"/api/v1/generations/{done['id']}")).status_code == 404
    rows = await api.fetch(
        "SELECT event_type FROM api.generation_events WHERE generation_id = $1",
        UUID(str(done["id"])),
    )
    assert [r["event_type"] for r in rows] == ["generation.deleted"]
    again = await api.client.delete(f"/api/v1/generations/{done['id']}")
    assert again.status_code == 404
    # A late event for it is ignored, not dead-lettered.
    seq = await api.publish(COMPLETED, completed_event(done))
    await api.wait_consumed(API_COMPLETED, seq)
    dead = await api.js.stream_info(DEAD_LETTER_STREAM.name)
    assert dead.state.messages == 0


async def test_delete_of_an_unfinished_generation_is_409(api: Api) -> None:
    pending = await api.create(**BODY)
    response = await api.client.delete(f"/api/v1/generations/{pending['id']}")
    assert response.status_code == 409
    assert response.json()["code"] == "generation_not_terminal"
    assert (await api.get(pending["id"]))["status"] == "pending"


async def test_legacy_delete_cancels(api: Api) -> None:
    pending = await api.create(
        "/api/v1/jobs", **{k: BODY[k] for k in ("operation_type", "provider_id", "params")}
    )
    response = await api.client.delete(f"/api/v1/jobs/{pending['id']}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert (await api.client.delete(f"/api/v1/jobs/{pending['id']}")).status_code == 409

    processing = await api.create(**BODY)
    await api.publish(SUBMITTED, submitted_event(processing))
    await api.wait_status(processing["id"], "processing")
    requested = await api.client.delete(f"/api/v1/jobs/{processing['id']}")
    assert requested.status_code == 202
    assert requested.json()["status"] == "processing"

    listed = (await api.client.get("/api/v1/jobs")).json()["items"]
    assert [g["id"] for g in listed] == [processing["id"], pending["id"]]
