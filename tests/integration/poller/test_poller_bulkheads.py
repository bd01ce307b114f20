"""The poller on real JetStream: on one replica a hung provider does not delay another
provider's completion; with a second replica on the same durable consumer, a job being polled is
never polled by both at once (its status call outlasts the ack wait here on purpose)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import pytest
from nats.js import JetStreamContext

from genbus.contracts import SUBMITTED, Asset, CompletionStatus, GenerationSubmitted
from genbus.contracts.topology import POLLER_SUBMITTED
from genbus.poller.config import PollerSettings
from genbus.poller.dependencies import PollerDeps
from genbus.poller.entrypoints.consumers import register_consumers
from genbus.providers import JobState, JobStatus, ProviderJobRef
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import broker_access, connect_nats
from genbus.runtime.publisher import encode_event
from genbus.runtime.pull import GenbusBroker
from tests.unit.poller.fakes import FakeAdapter, FakeDirectory, FakePublisher, ProviderAdapters
from tests.unit.poller.fakes import submitted as submitted_event
from tests.waiting import eventually

pytestmark = pytest.mark.integration
T = TypeVar("T")

SPEC = replace(POLLER_SUBMITTED, ack_wait_s=1.0)
#: Longer than the ack wait: only the in-progress heartbeat keeps the job from a second instance.
STATUS_BUDGET_S = 2.5
DONE = JobStatus(
    state=JobState.SUCCEEDED, asset=Asset(url="https://cdn.test/o.mp4", media_type="video/mp4")
)


class HungProvider:
    """Status calls hang until `gate` is set; counts calls and concurrent calls per job."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()

    async def status(self, job: ProviderJobRef) -> JobStatus:
        key = job.provider_job_id
        self.calls[key] += 1
        self.in_flight[key] += 1
        self.most_at_once[key] = max(self.most_at_once[key], self.in_flight[key])
        try:
            await self.gate.wait()
        finally:
            self.in_flight[key] -= 1
        return DONE

    async def cancel(self, job: ProviderJobRef) -> None:
        return None


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await connect_nats(nats_url)
    stream = nc.jetstream()
    await provision(stream, (SPEC,))
    yield stream
    await nc.close()


def _probe(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def probe() -> T:
        return read()

    return probe


async def _publish(js: JetStreamContext, event: GenerationSubmitted) -> None:
    message = encode_event(SUBMITTED, event)
    await js.publish(message.subject, message.payload, headers=message.headers)


async def test_a_hung_provider_delays_no_one_and_its_job_is_polled_once_at_a_time(
    nats_url: str, js: JetStreamContext
) -> None:
    hung = HungProvider()
    publisher = FakePublisher()
    deps = PollerDeps(
        settings=PollerSettings(),
        adapters=ProviderAdapters({"slow": hung, "sim": FakeAdapter(DONE)}),
        directory=FakeDirectory(),
        publisher=publisher,
    )
    brokers: list[GenbusBroker] = []

    async def start_replica() -> None:
        broker = GenbusBroker(nats_url, **broker_access(nats_url))
        register_consumers(
            broker, deps, batch_size=8, providers=2, spec=SPEC, status_budget_s=STATUS_BUDGET_S
        )
        brokers.append(broker)
        await broker.start()

    def ended(event: GenerationSubmitted) -> list[CompletionStatus]:
        return [c.status for c in publisher.completed if c.generation_id == event.generation_id]

    slow = submitted_event(provider_id="slow").model_copy(update={"provider_job_id": "hung-1"})
    fast = submitted_event(provider_id="sim")
    try:
        await start_replica()
        await _publish(js, slow)
        await eventually(_probe(lambda: hung.in_flight["hung-1"]), lambda n: n == 1)

        await _publish(js, fast)
        # Completed while the hung call is still running: the hang delays no other provider.
        await eventually(_probe(lambda: ended(fast)), bool, timeout=STATUS_BUDGET_S / 2)
        assert ended(fast) == [CompletionStatus.COMPLETED]
        assert hung.in_flight["hung-1"] == 1
        assert hung.calls["hung-1"] == 1

        await start_replica()  # a second replica, free to take the job if JetStream offers it
        # The call is given up after its budget (more than twice the ack wait here) and the job
        # polled again; never by both replicas at once.
        await eventually(_probe(lambda: hung.calls["hung-1"]), lambda n: n >= 2, timeout=10)
        assert hung.most_at_once["hung-1"] == 1
        assert ended(slow) == []  # a timed-out status call is not the job's end

        hung.gate.set()
        await eventually(_probe(lambda: ended(slow)), bool)
        assert ended(slow) == [CompletionStatus.COMPLETED]
        assert hung.most_at_once["hung-1"] == 1
        assert hung.calls["hung-1"] == 2
    finally:
        hung.gate.set()
        for broker in brokers:
            await broker.stop()
