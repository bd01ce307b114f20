"""Bulkheads: a hung provider holds its own budget only; status calls end within the ack wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from prometheus_client import REGISTRY

from genbus.contracts import DEADLINE_EXCEEDED, Asset, CompletionStatus
from genbus.contracts.topology import POLLER_SUBMITTED
from genbus.poller.config import PollerSettings
from genbus.poller.dependencies import PollerDeps
from genbus.poller.domain.schedule import next_poll_delay
from genbus.poller.entrypoints.consumers import register_consumers
from genbus.poller.service_layer.bulkheads import (
    ProviderBulkheads,
    poll_within_budget,
    worker_limit,
)
from genbus.poller.service_layer.polling import STATUS_BUDGET_S, poll_submitted
from genbus.providers import JobState, JobStatus
from genbus.runtime.consumer import RedeliverLater
from genbus.runtime.pull import GenbusBroker
from tests.unit.poller.fakes import (
    FakeAdapter,
    FakeDirectory,
    FakePublisher,
    ProviderAdapters,
    submitted,
)
from tests.waiting import eventually

pytestmark = pytest.mark.service_layer

T = TypeVar("T")
DONE = JobStatus(
    state=JobState.SUCCEEDED, asset=Asset(url="https://cdn.test/o.mp4", media_type="video/mp4")
)


class World:
    """A poller with a hung provider "slow" (until `release`) and a quick one, "fast"."""

    def __init__(self, limit: int = 64, busy_retry_s: float = 1.0) -> None:
        self.gate = asyncio.Event()
        self.slow = FakeAdapter(DONE, status_gate=self.gate)
        self.fast = FakeAdapter(DONE)
        self.publisher = FakePublisher()
        self.deps = PollerDeps(
            settings=PollerSettings(provider_busy_retry_s=busy_retry_s),
            adapters=ProviderAdapters({"slow": self.slow, "fast": self.fast}),
            directory=FakeDirectory(),
            publisher=self.publisher,
        )
        self.bulkheads = ProviderBulkheads(limit)
        self.tasks: list[asyncio.Task[None]] = []

    def start_slow_polls(self, count: int) -> list[asyncio.Task[None]]:
        started = [
            asyncio.create_task(
                poll_within_budget(self.deps, self.bulkheads, submitted(provider_id="slow"))
            )
            for _ in range(count)
        ]
        self.tasks += started
        return started

    async def wait_hung(self, count: int) -> None:
        await eventually(_value(lambda: self.slow.status_in_flight), lambda n: n == count)

    def completed_for(self, provider_id: str) -> list[CompletionStatus]:
        return [c.status for c in self.publisher.completed if c.provider_id == provider_id]

    async def release(self) -> None:
        self.gate.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    yield w
    await w.release()


def _value(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def probe() -> T:
        return read()

    return probe


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_hung_provider_does_not_delay_another_providers_polls(world: World) -> None:
    world.start_slow_polls(3)
    await world.wait_hung(3)

    async with asyncio.timeout(1.0):
        await poll_within_budget(world.deps, world.bulkheads, submitted(provider_id="fast"))

    assert world.completed_for("fast") == [CompletionStatus.COMPLETED]
    assert world.slow.status_in_flight == 3
    assert world.completed_for("slow") == []


async def test_the_per_provider_limit_holds_and_the_excess_is_deferred() -> None:
    world = World(limit=2, busy_retry_s=0.4)
    deferred = _sample("genbus_poller_polls_deferred_total", provider="slow")
    gauge = _sample("genbus_poller_polls_in_flight", provider="slow")
    try:
        world.start_slow_polls(2)
        await world.wait_hung(2)

        with pytest.raises(RedeliverLater) as later:
            await poll_within_budget(world.deps, world.bulkheads, submitted(provider_id="slow"))

        assert 0.2 <= later.value.delay_s <= 0.4
        assert len(world.slow.polled) == 2  # the third job was not polled
        assert world.bulkheads.in_flight("slow") == 2
        assert _sample("genbus_poller_polls_in_flight", provider="slow") == gauge + 2
        assert _sample("genbus_poller_polls_deferred_total", provider="slow") == deferred + 1
        # the other provider's budget is its own
        await poll_within_budget(world.deps, world.bulkheads, submitted(provider_id="fast"))
        assert world.completed_for("fast") == [CompletionStatus.COMPLETED]
    finally:
        await world.release()

    assert world.completed_for("slow") == [CompletionStatus.COMPLETED] * 2
    assert world.bulkheads.in_flight("slow") == 0
    assert _sample("genbus_poller_polls_in_flight", provider="slow") == gauge


async def test_many_concurrent_polls_never_exceed_the_limit() -> None:
    world = World(limit=3)
    try:
        polls = world.start_slow_polls(10)
        await world.wait_hung(3)
        deferred = [t for t in polls if t.done()]
        assert len(deferred) == 7
        assert all(isinstance(t.exception(), RedeliverLater) for t in deferred)
        assert world.bulkheads.in_flight("slow") == 3
    finally:
        await world.release()


async def test_an_overdue_job_of_a_full_provider_still_ends_by_its_deadline() -> None:
    world = World(limit=1)
    try:
        world.start_slow_polls(1)
        await world.wait_hung(1)

        overdue = submitted(provider_id="slow", deadline_in_s=-1.0)
        await poll_within_budget(world.deps, world.bulkheads, overdue)

        [completed] = [
            c for c in world.publisher.completed if c.generation_id == overdue.generation_id
        ]
        assert completed.status is CompletionStatus.FAILED
        assert completed.error == DEADLINE_EXCEEDED
        assert world.slow.cancelled == []  # the busy provider is not called beyond its budget
    finally:
        await world.release()


async def test_a_status_call_that_times_out_is_redelivered_with_backoff() -> None:
    world = World()
    calls = _sample(
        "genbus_provider_calls_total", provider="slow", operation="status", code="TimeoutError"
    )
    event = submitted(provider_id="slow", age_s=30.0)
    try:
        with pytest.raises(RedeliverLater) as later:
            await poll_submitted(world.deps, event, status_budget_s=0.05)
    finally:
        await world.release()

    settings = world.deps.settings
    assert later.value.delay_s == pytest.approx(
        next_poll_delay(30.0, settings.poll_initial_s, settings.poll_max_s), rel=0.05
    )
    assert "TimeoutError" in str(later.value)
    assert world.slow.status_in_flight == 0  # the call was abandoned, not left running
    assert world.publisher.completed == []  # transient trouble: the job is not ended
    assert (
        _sample(
            "genbus_provider_calls_total", provider="slow", operation="status", code="TimeoutError"
        )
        == calls + 1
    )


def test_a_status_call_ends_within_the_ack_wait_by_default() -> None:
    assert POLLER_SUBMITTED.ack_wait_s * 0.8 == STATUS_BUDGET_S < POLLER_SUBMITTED.ack_wait_s


def test_the_consumer_handles_messages_one_by_one_with_room_for_every_budget() -> None:
    broker = GenbusBroker()
    register_consumers(broker, _no_deps(), batch_size=16, max_polls_per_provider=8, providers=3)
    [loop] = broker.pull_loops
    assert loop.max_workers == worker_limit(8, 3, 16) == 8 * 3 + 16


def test_a_provider_budget_needs_at_least_one_poll() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ProviderBulkheads(0)


def _no_deps() -> PollerDeps:
    return PollerDeps(
        settings=PollerSettings(),
        adapters=ProviderAdapters({}),
        directory=FakeDirectory(),
        publisher=FakePublisher(),
    )
