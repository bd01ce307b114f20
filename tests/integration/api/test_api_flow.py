"""A generation's life through the real app: outbox → JetStream, then events → state machine."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from api_harness import ASSET, USER, Api, completed_event, eventually, submitted_event
from prometheus_client import REGISTRY

from genbus.contracts import (
    CANCEL_REQUESTED,
    COMPLETED,
    REQUESTED,
    SUBMITTED,
    GenerationCancelRequested,
    GenerationRequested,
    derive_event_id,
)
from genbus.contracts.topology import API_COMPLETED, API_SUBMITTED
from genbus.devstack.nats import NatsServer

pytestmark = pytest.mark.integration

T2V = {"operation_type": "text_to_video", "provider_id": "sim"}


async def test_create_commits_row_and_outbox_and_publishes_requested(api: Api) -> None:
    sub = await api.js.subscribe(REQUESTED.wildcard, ordered_consumer=True)
    deadline = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
    scheduled = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0)
    created = await api.create(
        **T2V,
        params={"prompt": " a cat ", "seed": 3, "provider_options": {"motion": 2}},
        priority=8,
        deadline=deadline.isoformat(),
        scheduled_at=scheduled.isoformat(),
        name="cat",
        metadata={"campaign": "c1"},
    )
    generation_id = UUID(created["id"])
    event_id = derive_event_id(generation_id, "generation.requested")

    assert created["status"] == "pending"
    assert created["params"] == {"prompt": " a cat ", "seed": 3, "provider_options": {"motion": 2}}
    assert created["canonical_params"] == {
        "prompt": "a cat",
        "seed": 3,
        "provider_options": {"motion": 2},
        "quality": "720p",
        "duration": 5,
        "aspect_ratio": "16:9",
    }
    assert datetime.fromisoformat(created["deadline_at"]) == deadline

    rows = await api.fetch("SELECT * FROM api.generations WHERE id = $1", generation_id)
    assert len(rows) == 1
    assert rows[0]["status"] == "pending"
    assert rows[0]["user_id"] == USER
    assert rows[0]["reproducible_hash"] == created["reproducible_hash"]
    outbox = await api.fetch("SELECT * FROM api.outbox WHERE event_id = $1", event_id)
    assert len(outbox) == 1
    assert outbox[0]["subject"] == REQUESTED.subject("sim")

    msg = await sub.next_msg(timeout=10)
    assert msg.subject == REQUESTED.subject("sim")
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == str(event_id)
    event = GenerationRequested.model_validate_json(msg.data)
    assert event.event_id == event_id
    assert event.generation_id == generation_id
    assert event.user_id == USER
    assert event.params == created["canonical_params"]
    assert event.priority == 8
    assert event.deadline_at == deadline
    assert event.scheduled_at == scheduled
    assert event.reproducible_hash == created["reproducible_hash"]
    assert set(json.loads(msg.data)) <= set(GenerationRequested.model_fields)

    published = await eventually(
        lambda: api.fetch("SELECT published_at FROM api.outbox WHERE event_id = $1", event_id),
        lambda r: r[0]["published_at"] is not None,
    )
    assert published


async def test_submitted_then_completed(api: Api) -> None:
    created = await api.create(**T2V, params={"prompt": "p"})

    await api.publish(SUBMITTED, submitted_event(created, account_id="a-7", provider_job_id="j-9"))
    processing = await api.wait_status(created["id"], "processing")
    assert processing["account_id"] == "a-7"
    assert processing["provider_job_id"] == "j-9"
    assert processing["attempt"] == 1
    assert processing["submitted_at"] is not None
    assert processing["asset"] is None

    await api.publish(COMPLETED, completed_event(created, provider_job_id="j-9"))
    done = await api.wait_status(created["id"], "completed")
    assert done["asset"] == {
        "url": str(ASSET.url),
        "stored": False,
        "expires": True,
        "provider_url": str(ASSET.url),
        "media_type": "video/mp4",
        "width": 1280,
        "height": 720,
        "duration_s": 5.0,
        "sha256": None,
        "size_bytes": None,
    }
    assert done["error"] is None
    assert done["completed_at"] is not None


async def test_completed_before_submitted_ends_completed(api: Api) -> None:
    created = await api.create(**T2V, params={"prompt": "p"})
    await api.publish(COMPLETED, completed_event(created))
    await api.wait_status(created["id"], "completed")

    submitted = submitted_event(created)
    seq = await api.publish(SUBMITTED, submitted)
    await api.wait_consumed(API_SUBMITTED, seq)
    final = await api.get(created["id"])
    assert final["status"] == "completed"
    assert final["asset"] is not None
    # The late submission still tells when it was submitted.
    assert final["submitted_at"] is not None
    assert final["provider_job_id"] == submitted.provider_job_id


async def test_a_redelivered_completed_event_changes_nothing(api: Api) -> None:
    created = await api.create(**T2V, params={"prompt": "p"})
    event = completed_event(created)
    await api.publish(COMPLETED, event)
    first = await api.wait_status(created["id"], "completed")

    # The same fact again, past JetStream's de-duplication (a new message id).
    again = event.model_copy(update={"event_id": derive_event_id(event.event_id, "again")})
    seq = await api.publish(COMPLETED, again)
    await api.wait_consumed(API_COMPLETED, seq)
    assert await api.get(created["id"]) == first


async def test_the_first_terminal_state_wins(api: Api) -> None:
    created = await api.create(**T2V, params={"prompt": "p"})
    await api.publish(SUBMITTED, submitted_event(created))
    await api.wait_status(created["id"], "processing")
    await api.publish(COMPLETED, completed_event(created, "failed"))
    failed = await api.wait_status(created["id"], "failed")
    assert failed["error"] == {"code": "provider_failed", "message": "boom", "retryable": False}

    seq = await api.publish(COMPLETED, completed_event(created, "completed"))
    await api.wait_consumed(API_COMPLETED, seq)
    final = await api.get(created["id"])
    assert final == failed
    assert final["asset"] is None


async def test_a_later_attempt_replaces_the_submission(api: Api) -> None:
    created = await api.create(**T2V, params={"prompt": "p"})
    await api.publish(SUBMITTED, submitted_event(created, attempt=2, provider_job_id="second"))
    await eventually(lambda: api.get(created["id"]), lambda g: g["attempt"] == 2)
    # An older attempt, delivered late, does not overwrite the newer one.
    seq = await api.publish(SUBMITTED, submitted_event(created, attempt=1, provider_job_id="first"))
    await api.wait_consumed(API_SUBMITTED, seq)
    final = await api.get(created["id"])
    assert (final["attempt"], final["provider_job_id"]) == (2, "second")


async def test_cancel_pending_is_immediate_and_tells_the_dispatcher(api: Api) -> None:
    sub = await api.js.subscribe(CANCEL_REQUESTED.wildcard, ordered_consumer=True)
    created = await api.create(**T2V, params={"prompt": "p"})

    response = await api.client.post(f"/api/v1/generations/{created['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert (await api.get(created["id"]))["status"] == "cancelled"

    msg = await sub.next_msg(timeout=10)
    event = GenerationCancelRequested.model_validate_json(msg.data)
    assert event.generation_id == UUID(created["id"])
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == str(
        derive_event_id(UUID(created["id"]), "generation.cancel_requested")
    )

    # The dispatcher's own "cancelled" and a provider's late "completed" change nothing.
    await api.publish(COMPLETED, completed_event(created, "cancelled"))
    seq = await api.publish(COMPLETED, completed_event(created, "completed"))
    await api.wait_consumed(API_COMPLETED, seq)
    assert (await api.get(created["id"]))["status"] == "cancelled"

    again = await api.client.post(f"/api/v1/generations/{created['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "generation_terminal"


async def test_concurrent_cancels_of_a_pending_generation_cancel_once(api: Api) -> None:
    created = await api.create(**T2V, params={"prompt": "p"})
    url = f"/api/v1/generations/{created['id']}/cancel"
    responses = await asyncio.gather(*(api.client.post(url) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    assert await api.count("outbox") == 2  # requested + one cancel_requested


async def test_cancel_processing_is_requested_and_ends_by_event(api: Api) -> None:
    sub = await api.js.subscribe(CANCEL_REQUESTED.wildcard, ordered_consumer=True)
    created = await api.create(**T2V, params={"prompt": "p"})
    await api.publish(SUBMITTED, submitted_event(created))
    await api.wait_status(created["id"], "processing")

    response = await api.client.post(f"/api/v1/generations/{created['id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "processing"
    msg = await sub.next_msg(timeout=10)
    assert GenerationCancelRequested.model_validate_json(msg.data).generation_id == UUID(
        created["id"]
    )
    assert (await api.get(created["id"]))["status"] == "processing"

    await api.publish(COMPLETED, completed_event(created, "cancelled"))
    assert (await api.wait_status(created["id"], "cancelled"))["error"] is None


async def test_legacy_jobs_routes_are_aliases(api: Api) -> None:
    # Exactly the body of the documented curl call.
    response = await api.client.post(
        "/api/v1/jobs",
        content=b'{"operation_type": "text_to_video", "provider_id": "sim", '
        b'"params": {"prompt": "test video", "quality": "720p"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "pending"
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert await api.count("outbox") == 1

    fetched = await api.client.get(f"/api/v1/jobs/{job['id']}")
    assert fetched.status_code == 200
    # GET alone estimates a pending generation's place in the queue.
    estimated = {"queue_position": 0, "estimated_start_at": None}
    assert fetched.json() == {**job, **estimated} == await api.get(job["id"])

    with_priority = await api.create("/api/v1/jobs", **T2V, params={"prompt": "p"}, priority=9)
    assert with_priority["priority"] == 9


async def test_missing_and_other_users_generations_are_404(api: Api) -> None:
    created = await api.create(**T2V, params={"prompt": "p"})
    missing = await api.client.get("/api/v1/generations/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["code"] == "generation_not_found"

    mallory = await api.client_as("mallory")
    for response in (
        await mallory.get(f"/api/v1/generations/{created['id']}"),
        await mallory.get(f"/api/v1/jobs/{created['id']}"),
        await mallory.post(f"/api/v1/generations/{created['id']}/cancel"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "generation_not_found"
    assert (await api.get(created["id"]))["status"] == "pending"


async def test_an_input_naming_a_generation_uses_its_asset(api: Api) -> None:
    source = await api.create(
        operation_type="text_to_image", provider_id="sim", params={"prompt": "p"}
    )
    body = {
        "operation_type": "image_to_video",
        "provider_id": "sim",
        "inputs": [{"role": "image", "generation_id": source["id"]}],
    }
    not_ready = await api.client.post("/api/v1/generations", json=body)
    assert not_ready.status_code == 422
    assert not_ready.json()["errors"] == [
        {
            "field": "inputs[0].generation_id",
            "code": "generation_not_completed",
            "message": "that generation has no asset yet",
        }
    ]

    await api.publish(COMPLETED, completed_event(source))
    await api.wait_status(source["id"], "completed")
    created = await api.create(**body)
    assert created["inputs"] == [{"role": "image", "generation_id": source["id"]}]
    assert created["canonical_inputs"] == [{"role": "image", "url": str(ASSET.url)}]


async def test_healthz_and_readyz(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": True, "nats": True}}


async def test_readyz_stays_ready_while_nats_is_down(api: Api, nats_server: NatsServer) -> None:
    """The api serves with Postgres alone (writes go through the outbox): NATS trouble shows in
    the checks and in `genbus_dependency_up`, never as a 503 that would take every replica out."""
    nats_server.stop()
    try:
        ready = await api.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"postgres": True, "nats": False}}
        assert _dependency_up("nats") == 0
        assert _dependency_up("postgres") == 1
    finally:
        nats_server.start()
    # Back once the client has reconnected.
    await eventually(
        lambda: api.client.get("/readyz"), lambda r: r.json()["checks"]["nats"] is True
    )
    assert _dependency_up("nats") == 1
    await eventually(_true, lambda _: api.nc.is_connected)  # the harness's own connection too


async def _true() -> bool:
    return True


def _dependency_up(dependency: str) -> float | None:
    return REGISTRY.get_sample_value(
        "genbus_dependency_up", {"service": "api", "dependency": dependency}
    )
