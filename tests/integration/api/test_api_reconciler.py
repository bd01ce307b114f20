"""Nothing stuck: a generation nobody finishes is failed after its deadline (+ grace)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from api_harness import Api, completed_event, submitted_event

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
