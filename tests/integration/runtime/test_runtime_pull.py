"""The lean pull loops on real JetStream: a bounded number of handlers at once with
`max_workers`, and a stop that lets the handlers in hand finish and ack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from nats.js import JetStreamContext

from genbus.contracts import GENERATIONS_STREAM, REQUESTED, GenerationRequested
from genbus.contracts.topology import DISPATCHER_REQUESTED
from genbus.runtime.consumer import Delivery, register_consumer
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import connect_nats
from genbus.runtime.publisher import encode_event
from genbus.runtime.service import make_broker
from tests.events import sample_requested
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SPEC = replace(DISPATCHER_REQUESTED, durable="pull-test-requested", ack_wait_s=30.0)


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await connect_nats(nats_url)
    stream = nc.jetstream()
    await provision(stream, (SPEC,))
    yield stream
    await nc.close()


async def _publish(js: JetStreamContext, count: int) -> None:
    for _ in range(count):
        message = encode_event(REQUESTED, sample_requested())
        await js.publish(message.subject, message.payload, headers=message.headers)


async def _unacked(js: JetStreamContext) -> tuple[int, int]:
    info = await js.consumer_info(GENERATIONS_STREAM.name, SPEC.durable)
    return info.num_pending or 0, info.num_ack_pending or 0


async def test_max_workers_bounds_the_handlers_in_hand(nats_url: str, js: JetStreamContext) -> None:
    in_hand, most, done = 0, 0, 0
    release = asyncio.Event()

    async def handler(_: Delivery[GenerationRequested]) -> None:
        nonlocal in_hand, most, done
        in_hand += 1
        most = max(most, in_hand)
        await release.wait()
        in_hand -= 1
        done += 1

    broker = make_broker(nats_url, "pull-test")
    register_consumer(broker, SPEC, handler, batch_size=8, max_workers=3)
    await broker.start()
    try:
        await _publish(js, 10)

        async def holding() -> int:
            return in_hand

        await eventually(holding, lambda n: n == 3)
        assert most == 3
        release.set()

        async def finished() -> int:
            return done

        await eventually(finished, lambda n: n == 10)
        assert most == 3
        await eventually(lambda: _unacked(js), lambda counts: counts == (0, 0))
    finally:
        await broker.stop()


async def test_stop_lets_the_handler_in_hand_finish_and_ack(
    nats_url: str, js: JetStreamContext
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def handler(delivery: Delivery[GenerationRequested]) -> None:
        started.set()
        await release.wait()
        finished.append(str(delivery.event.generation_id))

    broker = make_broker(nats_url, "pull-test", graceful_timeout=10.0)
    register_consumer(broker, SPEC, handler)
    await broker.start()
    await _publish(js, 1)
    await asyncio.wait_for(started.wait(), 15.0)
    stopping = asyncio.create_task(broker.stop())
    await asyncio.sleep(0)  # the stop has begun: no more pulls
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, 15.0)
    assert len(finished) == 1
    # Acked before the connection was drained: nothing is left for a redelivery.
    assert await _unacked(js) == (0, 0)
