"""Nothing stuck: a generation nobody finishes is failed after its deadline (+ grace)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest
from api_harness import Api, completed_event, submitted_event

from genbus.api.service_layer import upkeep
from genbus.contracts import CANCEL_REQUESTED, COMPLETED, SUBMITTED, GenerationCancelRequested
from genbus.contracts.topology import API_COMPLETED

pytestmark = pytest.mark.integration

T2V = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}}


def _soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_overdue_generations_fail_with_deadline_exceeded(api: Api) -> None:
    sub = await api.js.subscribe(CANCEL_REQUESTED.wildcard, ordered_consumer=True)
    pending = await api.create(**T2V, deadline=_soon(2))
    processing = await api.create(**T2V, deadline=_soon(2))
    await api.publish(SUBMITTED, submitted_event(processing))
    await api.wait_status(processing["id"], "processing")
    patient = await api.create(**T2V)

    for generation in (pending, processing):
        failed = await api.wait_status(generation["id"], "failed")
        assert failed["error"]["code"] == "deadline_exceeded"
        assert failed["completed_at"] is not None
    assert (await api.get(patient["id"]))["status"] == "pending"

    # The dispatcher is told to stop working on both.
    told = {
        GenerationCancelRequested.model_validate_json((await sub.next_msg(timeout=10)).data)
        for _ in range(2)
    }
    assert {e.generation_id for e in told} == {UUID(pending["id"]), UUID(processing["id"])}
    assert {e.reason for e in told} == {"deadline exceeded"}

    # A completion arriving after the reconciler failed it changes nothing: first terminal wins.
    seq = await api.publish(COMPLETED, completed_event(processing))
    await api.wait_consumed(API_COMPLETED, seq)
    assert (await api.get(processing["id"]))["status"] == "failed"


async def test_terminal_generations_past_their_deadline_are_left_alone(api: Api) -> None:
    deadline = _soon(2)
    created = await api.create(**T2V, deadline=deadline)
    witness = await api.create(**T2V, deadline=deadline)
    await api.publish(COMPLETED, completed_event(created))
    done = await api.wait_status(created["id"], "completed")
    # Once the witness (same deadline) is failed, the reconciler has swept past that deadline.
    await api.wait_status(witness["id"], "failed")
    assert await api.get(created["id"]) == done


async def test_expired_rows_are_purged_in_bounded_batches(api: Api) -> None:
    """Each statement deletes at most one batch; a pass stops after its batches (the next pass
    takes the rest); rows inside their retention stay."""
    for index in range(4):
        await api.client.post(
            "/api/v1/generations", json=T2V, headers={"Idempotency-Key": f"purge-{index}"}
        )
    conn = await asyncpg.connect(api.database_url)
    try:
        # All but one key, and every change-log row, are 2 hours old (the service's own purger
        # keeps at least a day, so it never races these counts).
        await conn.execute(
            "UPDATE api.idempotency_keys SET created_at = now() - interval '2 hours' "
            "WHERE key <> 'purge-3'"
        )
        old_changes = await conn.fetchval("SELECT count(*) FROM api.generation_events")
        await conn.execute(
            "UPDATE api.generation_events SET created_at = now() - interval '2 hours'"
        )
        now = datetime.now(UTC)
        # Quota counters: today's (written by the POSTs above) and yesterday's stay.
        await conn.execute(
            "INSERT INTO api.daily_usage (user_id, day, generations) VALUES "
            "('someone', current_date - 1, 4), ('someone', current_date - 2, 5), "
            "('someone', current_date - 30, 6)"
        )
        purged = await upkeep.purge_expired(
            api.runtime.uow,
            now=now,
            idempotency_ttl=timedelta(hours=1),
            change_log_ttl=timedelta(hours=1),
            batch=1,
            max_batches=2,
        )
        assert purged == (2, 2, 2)  # two one-row statements each, then the pass ends
        purged = await upkeep.purge_expired(
            api.runtime.uow,
            now=now,
            idempotency_ttl=timedelta(hours=1),
            change_log_ttl=timedelta(hours=1),
        )
        assert purged.idempotency_keys == 1  # the third old key; the recent one stays
        assert purged.change_log == old_changes - 2
        assert purged.quota_counters == 0
        remaining = await conn.fetch("SELECT key FROM api.idempotency_keys")
        assert [r["key"] for r in remaining] == ["purge-3"]
        counters = await conn.fetch(
            "SELECT current_date - day AS age FROM api.daily_usage ORDER BY day DESC"
        )
        assert [r["age"] for r in counters] == [0, 1]
    finally:
        await conn.close()
