"""The Postgres store: migrations, one delivery per (endpoint, event), leases that keep two
replicas from sending the same delivery, fenced attempt records, disabling and re-enabling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from genbus.runtime.db import create_engine
from genbus.webhooks.__main__ import MIGRATIONS
from genbus.webhooks.adapters.repository import SqlStore
from genbus.webhooks.adapters.tables import SCHEMA
from genbus.webhooks.domain.model import (
    ALL_KINDS,
    DeliveryStatus,
    Endpoint,
    EventKind,
    SendResult,
    webhook_id,
)
from genbus.webhooks.domain.retry import DisablePolicy
from genbus.webhooks.service_layer.ports import AttemptRecord, EndpointChanges, NewDelivery

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    from genbus.runtime.migrations import upgrade_to_head

    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, database_url, SCHEMA)
    engine = create_engine(database_url, pool_size=4, max_overflow=0)
    try:
        yield SqlStore(engine)
    finally:
        await engine.dispose()


async def _endpoint(store: SqlStore, user: str = "alice") -> Endpoint:
    endpoint = Endpoint(
        id=uuid4(),
        user_id=user,
        url="https://hooks.example/x",
        description="",
        event_kinds=ALL_KINDS,
        enabled=True,
        disabled_reason=None,
        disabled_at=None,
        consecutive_failures=0,
        failing_since=None,
        created_at=NOW,
        updated_at=NOW,
    )
    await store.add_endpoint(endpoint, "encrypted")
    return endpoint


def _delivery(endpoint: Endpoint, event_id: object = None) -> NewDelivery:
    event = event_id or uuid4()
    assert not isinstance(event, str)
    return NewDelivery(
        id=uuid4(),
        endpoint_id=endpoint.id,
        source_event_id=event,  # type: ignore[arg-type]
        webhook_id=webhook_id(endpoint.id, event),  # type: ignore[arg-type]
        event_type="generation.completed",
        generation_id=uuid4(),
        payload={"type": "generation.completed", "data": {}},
        next_attempt_at=NOW,
    )


def _record(due_id: object, endpoint: Endpoint, owner: str, result: SendResult) -> AttemptRecord:
    failed = not result.succeeded
    return AttemptRecord(
        delivery_id=due_id,  # type: ignore[arg-type]
        endpoint_id=endpoint.id,
        owner=owner,
        attempted_at=NOW,
        result=result,
        status=DeliveryStatus.PENDING if failed else DeliveryStatus.SUCCEEDED,
        tries=1 if failed else 0,
        next_attempt_at=NOW + timedelta(seconds=1) if failed else None,
    )


async def test_an_event_is_stored_once_per_endpoint(store: SqlStore) -> None:
    endpoint = await _endpoint(store)
    event_id = uuid4()
    assert await store.add_deliveries([_delivery(endpoint, event_id)]) == 1
    assert await store.add_deliveries([_delivery(endpoint, event_id)]) == 0
    assert await store.subscribed_endpoints("alice", EventKind.FAILED) == [endpoint.id]
    assert await store.subscribed_endpoints("bob", EventKind.FAILED) == []
    assert len(await store.list_deliveries("alice", endpoint.id, None, 10) or []) == 1
    assert await store.list_deliveries("bob", endpoint.id, None, 10) is None


async def test_replicas_claiming_at_once_never_share_a_delivery(store: SqlStore) -> None:
    endpoint = await _endpoint(store)
    await store.add_deliveries([_delivery(endpoint) for _ in range(40)])
    claims = await asyncio.gather(*(store.claim_due(f"r{i}", NOW, 30, 10) for i in range(6)))
    ids = [due.id for claim in claims for due in claim]
    assert len(ids) == len(set(ids)) == 40
    assert await store.claim_due("late", NOW, 30, 10) == []  # all leased
    # A lease that ran out (its replica died) is claimed again.
    later = NOW + timedelta(seconds=31)
    assert len(await store.claim_due("late", later, 30, 100)) == 40


async def test_only_the_lease_holder_records_the_attempt(store: SqlStore) -> None:
    endpoint = await _endpoint(store)
    await store.add_deliveries([_delivery(endpoint)])
    (due,) = await store.claim_due("r1", NOW, 30, 10)
    ok = SendResult(204, None, 3)
    policy = DisablePolicy(failures=3, period_s=0)
    assert not await store.record_attempt(_record(due.id, endpoint, "r2", ok), policy)
    assert await store.record_attempt(_record(due.id, endpoint, "r1", ok), policy)
    attempts = await store.list_attempts("alice", endpoint.id, due.id)
    assert [(a.status_code, a.succeeded, a.duration_ms) for a in attempts or []] == [(204, True, 3)]
    (delivery,) = await store.list_deliveries("alice", endpoint.id, None, 10) or []
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert await store.list_attempts("bob", endpoint.id, due.id) is None


async def test_failures_disable_the_endpoint_and_enabling_resumes_its_queue(
    store: SqlStore,
) -> None:
    endpoint = await _endpoint(store)
    await store.add_deliveries([_delivery(endpoint) for _ in range(3)])
    policy = DisablePolicy(failures=3, period_s=0)
    for due in await store.claim_due("r1", NOW, 30, 10):
        await store.record_attempt(
            _record(due.id, endpoint, "r1", SendResult(500, "HTTP 500", 2)), policy
        )
    disabled = await store.get_endpoint("alice", endpoint.id)
    assert disabled is not None
    assert (disabled.enabled, disabled.consecutive_failures) == (False, 3)
    assert "HTTP 500" in (disabled.disabled_reason or "")
    later = NOW + timedelta(seconds=5)
    assert await store.claim_due("r1", later, 30, 10) == []
    assert await store.queue_depth(later) == 0

    enabled = await store.update_endpoint(
        "alice", endpoint.id, EndpointChanges(enabled=True), later
    )
    assert enabled is not None
    assert (enabled.enabled, enabled.disabled_reason, enabled.consecutive_failures) == (
        True,
        None,
        0,
    )
    assert await store.queue_depth(later) == 3
    assert len(await store.claim_due("r1", later, 30, 10)) == 3


async def test_a_delivery_is_replayed_due_now_with_its_schedule_restarted(
    store: SqlStore,
) -> None:
    endpoint = await _endpoint(store)
    await store.add_deliveries([_delivery(endpoint)])
    (due,) = await store.claim_due("r1", NOW, 30, 10)
    policy = DisablePolicy()
    await store.record_attempt(_record(due.id, endpoint, "r1", SendResult(200, None, 1)), policy)
    assert await store.replay("bob", endpoint.id, due.id, NOW) is None
    replayed = await store.replay("alice", endpoint.id, due.id, NOW)
    assert replayed is not None
    assert (replayed.status, replayed.tries, replayed.webhook_id) == (
        DeliveryStatus.PENDING,
        0,
        due.webhook_id,
    )
    assert [d.id for d in await store.claim_due("r2", NOW, 30, 10)] == [due.id]


async def test_deleting_an_endpoint_deletes_its_deliveries(store: SqlStore) -> None:
    endpoint = await _endpoint(store)
    await store.add_deliveries([_delivery(endpoint)])
    assert not await store.delete_endpoint("bob", endpoint.id)
    assert await store.delete_endpoint("alice", endpoint.id)
    assert await store.queue_depth(NOW) == 0


async def test_finished_deliveries_are_purged_after_the_retention_in_batches(
    store: SqlStore,
) -> None:
    from genbus.webhooks.service_layer.retention import purge_once

    endpoint = await _endpoint(store)
    await store.add_deliveries([_delivery(endpoint) for _ in range(5)])
    policy = DisablePolicy()
    claimed = await store.claim_due("r1", NOW, 30, 10)
    for due in claimed[:3]:  # three finished, two still pending
        await store.record_attempt(
            _record(due.id, endpoint, "r1", SendResult(200, None, 1)), policy
        )
    assert await purge_once(store, 1.0, 2, NOW + timedelta(minutes=30)) == 0  # too recent
    assert await purge_once(store, 1.0, 2, NOW + timedelta(hours=2)) == 3
    remaining = await store.list_deliveries("alice", endpoint.id, None, 10) or []
    assert {d.status for d in remaining} == {DeliveryStatus.PENDING}
    assert len(remaining) == 2


async def test_an_endpoint_the_caller_disabled_keeps_the_callers_reason(store: SqlStore) -> None:
    endpoint = await _endpoint(store)
    await store.add_deliveries([_delivery(endpoint)])
    (due,) = await store.claim_due("r1", NOW, 30, 10)
    await store.update_endpoint("alice", endpoint.id, EndpointChanges(enabled=False), NOW)
    failed = _record(due.id, endpoint, "r1", SendResult(500, "HTTP 500", 1))
    assert await store.record_attempt(failed, DisablePolicy(failures=1, period_s=0))
    after = await store.get_endpoint("alice", endpoint.id)
    assert after is not None
    assert (after.enabled, after.disabled_reason) == (False, "disabled by the caller")
    assert after.consecutive_failures == 1
