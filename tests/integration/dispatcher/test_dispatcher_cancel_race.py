"""A cancel that arrives while its request is being queued, on a real Postgres: the two
consumers run concurrently, so the cancel can look for the job while the request's row is
inserted but not yet committed. The cancel must still end the job cancelled (never dispatched)."""

from __future__ import annotations

import asyncio

import pytest
from dispatcher_harness import Dispatcher, eventually
from sqlalchemy import text

from genbus.contracts import GenerationCancelRequested
from genbus.dispatcher.service_layer import handlers
from genbus.providers import AdapterRegistry

pytestmark = pytest.mark.integration


async def _cancels_waiting_for_a_lock(dispatcher: Dispatcher) -> int:
    """Sessions of this database waiting for a lock (the cancel's insert behind the request's)."""
    async with dispatcher.engine.connect() as conn:
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


async def test_a_cancel_racing_its_requests_insert_still_cancels_the_job(
    dispatcher: Dispatcher,
) -> None:
    (request,) = await dispatcher.events(1)
    cancel = GenerationCancelRequested.new(
        generation_id=request.generation_id,
        user_id=request.user_id,
        provider_id=request.provider_id,
        operation_type=request.operation_type,
        reason="cancelled by user",
    )
    # The request's transaction has inserted the job, not yet committed.
    queuing = dispatcher.deps.uow()
    await queuing.__aenter__()
    try:
        assert await queuing.jobs.ingest(request)
        cancelling = asyncio.create_task(
            handlers.on_cancel_requested(
                cancel,
                dispatcher.deps.uow(),
                wake=dispatcher.deps.wake.set,
                adapters=AdapterRegistry(),
                cipher=dispatcher.cipher,
            )
        )
        # The cancel did not see the uncommitted job; its tombstone now waits on the row.
        await eventually(lambda: _cancels_waiting_for_a_lock(dispatcher), lambda n: n >= 1)
        assert not cancelling.done()
        await queuing.commit()
    finally:
        await queuing.__aexit__(None, None, None)
    await asyncio.wait_for(cancelling, 10)

    job = await dispatcher.job(request.generation_id)
    assert job["state"] == "cancelled"
    outcomes = [
        e for e in await dispatcher.published() if e["generation_id"] == str(request.generation_id)
    ]
    assert [(e["event_type"], e["status"]) for e in outcomes] == [
        ("generation.completed", "cancelled")
    ]
