"""A pending generation's wait reason (from the dispatcher's GenerationWaiting, through the
api's consumer) and its queue position (estimated from the api's tables with the fair-share
rule), against NATS and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from api_harness import USER, Api, eventually, submitted_event

from genbus.contracts import SUBMITTED, WAITING, GenerationWaiting, WaitingReason
from genbus.contracts.topology import API_WAITING

pytestmark = pytest.mark.integration


def waiting_event(
    generation: dict[str, Any], reason: WaitingReason, sequence: int, **fields: Any
) -> GenerationWaiting:
    return GenerationWaiting(
        event_id=uuid4(),
        occurred_at=datetime.now(UTC),
        generation_id=UUID(generation["id"]),
        user_id=generation["user_id"],
        provider_id=generation["provider_id"],
        operation_type=generation["operation_type"],
        reason=reason,
        sequence=sequence,
        **fields,
    )


async def _post(client: Any, prompt: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/generations",
        json={
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": prompt},
            **fields,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_dispatchers_latest_wait_reason_shows_until_submitted(api: Api) -> None:
    generation = await api.create(
        operation_type="text_to_video", provider_id="sim", params={"prompt": "a queue"}
    )
    assert generation["wait_reason"] == "waiting_for_account"
    retry_at = datetime.now(UTC) + timedelta(seconds=30)
    await api.publish(
        WAITING, waiting_event(generation, WaitingReason.RETRYING, 2, next_attempt_at=retry_at)
    )
    shown = await eventually(
        lambda: api.get(generation["id"]), lambda g: g["wait_reason"] == "retrying"
    )
    assert datetime.fromisoformat(shown["next_attempt_at"]) == retry_at
    # An older report, arriving late, changes nothing.
    seq = await api.publish(WAITING, waiting_event(generation, WaitingReason.USER_AT_CAPACITY, 1))
    await api.wait_consumed(API_WAITING, seq)
    assert (await api.get(generation["id"]))["wait_reason"] == "retrying"
    await api.publish(WAITING, waiting_event(generation, WaitingReason.PROVIDER_UNAVAILABLE, 3))
    shown = await eventually(
        lambda: api.get(generation["id"]), lambda g: g["wait_reason"] == "provider_unavailable"
    )
    assert shown["next_attempt_at"] is None
    await api.publish(SUBMITTED, submitted_event(generation))
    done = await api.wait_status(generation["id"], "processing")
    assert done["wait_reason"] is None
    assert done["queue_position"] is None
    # A report after the submission changes nothing.
    seq = await api.publish(WAITING, waiting_event(generation, WaitingReason.RETRYING, 4))
    await api.wait_consumed(API_WAITING, seq)
    assert (await api.get(generation["id"]))["status"] == "processing"
    assert (await api.get(generation["id"]))["wait_reason"] is None


async def test_queue_position_follows_priority_then_fair_share(api: Api) -> None:
    bob = await api.client_as("bob")
    alice = [await _post(api.client, f"alice {i}") for i in range(6)]
    # Two of Alice's are running: her waiting ones rank 2, 3, 4, 5.
    for n, generation in enumerate(alice[:2]):
        await api.publish(
            SUBMITTED, submitted_event(generation, provider_job_id=f"job-{n}", account_id="a")
        )
    for generation in alice[:2]:
        await api.wait_status(generation["id"], "processing")
    bobs = [await _post(bob, f"bob {i}") for i in range(3)]
    urgent = await _post(bob, "urgent", priority=9)

    async def position(generation: dict[str, Any], client: Any = None) -> int:
        response = await (client or api.client).get(f"/api/v1/generations/{generation['id']}")
        assert response.status_code == 200
        value: int = response.json()["queue_position"]
        return value

    # The priority 9 one is first, whoever's it is.
    assert await position(urgent, bob) == 0
    # Bob has none in flight: his three rank 0, 1, 2, Alice's waiting ones 2 and up; ties count
    # as behind. So each of Bob's is behind the urgent one and his own earlier ones only.
    assert [await position(g, bob) for g in bobs] == [1, 2, 3]
    # Alice's first waiting one ranks 2: behind the urgent one and Bob's first two.
    assert await position(alice[2]) == 3
    # Her last waiting one ranks 5: behind her own 3 and all of Bob's (4).
    assert await position(alice[5]) == 3 + 4
    await bob.aclose()


async def test_no_estimated_start_without_turnover(api: Api) -> None:
    generation = await api.create(
        operation_type="text_to_video", provider_id="sim", params={"prompt": "alone"}
    )
    shown = await api.get(generation["id"])
    assert shown["queue_position"] == 0
    assert shown["estimated_start_at"] is None
    assert shown["user_id"] == USER


async def _ended_and_flying(
    api: Api, ended_ago_s: list[float], flying: int
) -> tuple[dict[str, Any], timedelta]:
    """Generations of the sim that ended `ended_ago_s` seconds ago (each after 2 s at the
    provider) and `flying` just submitted; then a new pending one and how far out its
    estimated start is."""
    ended = [await _post(api.client, f"ended {i}") for i in range(len(ended_ago_s))]
    in_flight = [await _post(api.client, f"flying {i}") for i in range(flying)]
    waiting = await _post(api.client, "next")
    conn = await asyncpg.connect(api.database_url)
    try:
        for generation, age_s in zip(ended, ended_ago_s, strict=True):
            await conn.execute(
                "UPDATE api.generations SET status = 'completed', "
                "submitted_at = now() - make_interval(secs => $2 + 2), "
                "completed_at = now() - make_interval(secs => $2) WHERE id = $1",
                UUID(generation["id"]),
                age_s,
            )
        await conn.execute(
            "UPDATE api.generations SET status = 'processing', submitted_at = now() "
            "WHERE id = ANY($1::uuid[])",
            [UUID(g["id"]) for g in in_flight],
        )
    finally:
        await conn.close()
    asked_at = datetime.now(UTC)
    shown = await api.get(waiting["id"])
    start = datetime.fromisoformat(shown["estimated_start_at"])
    return shown, start - asked_at


async def test_the_estimated_start_follows_the_providers_current_pace(api: Api) -> None:
    """Forty generations ended in the last minute, none in flight: eight slowly (one every
    5 s, 50-15 s ago), then 32 at 4 a second. The estimate follows the recent pace (~4/s: the
    next start about a quarter of a second out), not the minute's average (~0.8/s, over 1 s)."""
    ages_s = [50 - 5 * i for i in range(8)] + [8 - 0.25 * i for i in range(32)]
    shown, start_in = await _ended_and_flying(api, ages_s, flying=0)
    assert shown["queue_position"] == 0
    assert timedelta(seconds=0.1) < start_in < timedelta(seconds=0.6)


async def test_the_estimated_start_follows_the_slots_in_use_as_soon_as_they_fill(api: Api) -> None:
    """Eight jobs just went to the provider, where recent jobs took 2 s each; the only ends in
    the last minute are two, 40 s apart. In flight over time per job says ~4 ends a second at
    once (the next start ~0.25 s out); the ends alone would say one per 40 s."""
    shown, start_in = await _ended_and_flying(api, [45, 5], flying=8)
    assert shown["queue_position"] == 0
    assert timedelta(seconds=0.1) < start_in < timedelta(seconds=0.6)
