"""The Python client (`genbus.client`) against the running system."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genbus.client import (
    AsyncGenbusClient,
    Conflict,
    GenbusClient,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from genbus.devstack.system import GenbusSystem

pytestmark = pytest.mark.e2e

BODY: dict[str, Any] = {
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "client test", "quality": "720p"},
}


@pytest.fixture
def client(system: GenbusSystem) -> Iterator[GenbusClient]:
    with GenbusClient(system.api_url, timeout_s=10) as genbus:
        yield genbus


def _later() -> str:
    return (datetime.now(UTC) + timedelta(minutes=10)).isoformat()


def test_create_wait_get_list_and_delete(client: GenbusClient) -> None:
    done = client.create(BODY, wait=30)
    assert done.status.value == "completed"
    assert done.asset is not None
    assert client.get(done.id).status.value == "completed"
    assert client.get(done.id, wait=5).status.value == "completed"
    listed = client.list(status=["completed"], provider_id=["sim"], limit=100)
    assert done.id in {g.id for g in listed.items}
    assert done.id in {g.id for g in client.iter_all(status=["completed"], limit=2)}

    with pytest.raises(Conflict) as not_retryable:
        client.retry(done.id)
    assert not_retryable.value.code == "generation_not_retryable"

    client.delete(done.id)
    with pytest.raises(NotFound) as gone:
        client.get(done.id)
    assert gone.value.code == "generation_not_found"


def test_idempotency_keys(client: GenbusClient) -> None:
    first = client.create(BODY, idempotency_key="client-e2e-1")
    again = client.create(BODY, idempotency_key="client-e2e-1")
    assert again.id == first.id
    with pytest.raises(Conflict) as reused:
        client.create({**BODY, "priority": 9}, idempotency_key="client-e2e-1")
    assert reused.value.code == "idempotency_key_reused"


def test_errors_are_typed(client: GenbusClient, system: GenbusSystem) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        client.create({**BODY, "params": {"quality": "720p"}})
    assert invalid.value.code == "validation_error"
    assert "params.prompt" in {e.field for e in invalid.value.errors}
    stranger = GenbusClient(system.api_url, api_key="gbk_not_a_key")
    with stranger, pytest.raises(Unauthorized) as refused:
        stranger.list()
    assert refused.value.code == "unauthorized"


def test_cancel_then_retry(client: GenbusClient) -> None:
    scheduled = client.create({**BODY, "scheduled_at": _later()})
    assert scheduled.status.value == "pending"
    cancelled = client.cancel(scheduled.id)
    assert cancelled.status.value == "cancelled"
    retried = client.retry(scheduled.id)
    assert retried.parent_generation_id == scheduled.id
    assert client.get(retried.id, wait=30).status.value == "completed"


def test_live_status_and_resume(client: GenbusClient) -> None:
    created = client.create(BODY)
    events = list(client.events(created.id))
    statuses = [e.generation.status.value for e in events if e.generation is not None]
    assert statuses[0] == "pending"
    assert statuses[-1] == "completed"
    assert [e.id for e in events] == sorted({e.id for e in events})
    # Resuming after the first event gives exactly the rest; after the last, nothing.
    rest = list(client.events(created.id, last_event_id=events[0].id))
    assert [e.id for e in rest] == [e.id for e in events[1:]]
    assert list(client.events(created.id, last_event_id=events[-1].id)) == []


async def test_the_async_client(system: GenbusSystem) -> None:
    async with AsyncGenbusClient(system.api_url, timeout_s=10) as genbus:
        done = await genbus.create(BODY, wait=30)
        assert done.status.value == "completed"
        seen = [e async for e in genbus.events(done.id)]
        assert seen[-1].generation is not None
        assert seen[-1].generation.status.value == "completed"
        page = await genbus.list(limit=1)
        assert len(page.items) == 1
        await genbus.delete(done.id)
        with pytest.raises(NotFound):
            await genbus.get(done.id)
