"""A slow provider never takes the submission slots another provider needs (a bulkhead)."""

from __future__ import annotations

import asyncio

import pytest

from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.domain.model import JobState
from genbus.dispatcher.service_layer.scheduler import Scheduler
from genbus.providers import AdapterRegistry, CredentialCipher, Credentials
from tests.unit.dispatcher.fakes import (
    API_KEY,
    SAFE,
    FakeAdapter,
    FakeStore,
    factory_of,
    hang,
    requested,
    result,
)
from tests.waiting import eventually

pytestmark = pytest.mark.service_layer

CAP = 2


async def test_a_hung_provider_fills_only_its_own_bulkhead() -> None:
    cipher = CredentialCipher([CredentialCipher.generate_key()])
    store = FakeStore()
    for provider in ("slow", "fast"):
        store.add_account(
            cipher.encrypt(Credentials(api_key=API_KEY)),
            account_id=f"{provider}-account",
            provider_id=provider,
            max_concurrent=10,
        )
    slow = FakeAdapter([result()] * 5, guarantees=SAFE, on_submit=hang, provider_id="slow")
    fast = FakeAdapter([result(f"fast-{i}") for i in range(3)], guarantees=SAFE, provider_id="fast")
    deps = Deps(
        settings=DispatcherSettings(
            max_inflight_submissions=4, max_inflight_per_provider=CAP, idle_tick_s=0.01
        ),
        uow=store.uow,
        adapters=AdapterRegistry(factories={"slow": factory_of(slow), "fast": factory_of(fast)}),
        cipher=cipher,
        owner="replica-1",
    )
    # The slow provider's jobs arrived first: without a bulkhead they would take every slot.
    ids = []
    for provider in ["slow"] * 5 + ["fast"] * 3:
        event = requested(provider_id=provider)
        async with store.uow() as uow:
            await uow.jobs.ingest(event)
            await uow.commit()
        ids.append(event.generation_id)

    scheduler = Scheduler(deps)
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    try:

        async def fast_states() -> list[JobState]:
            return [store.job(g).state for g in ids[5:]]

        await eventually(fast_states, lambda states: all(s is JobState.SUBMITTED for s in states))
        assert len(slow.submits) == CAP  # never more than its bulkhead, all still hanging
        assert [store.job(g).state for g in ids[:5]].count(JobState.CLAIMED) == CAP
    finally:
        stop.set()
        await running
        await scheduler.drain(0.0)
