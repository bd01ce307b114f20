"""The consumer ack policy on real JetStream: nothing dropped, poison dead-lettered, replayed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from nats.js import JetStreamContext

from genbus.contracts import REQUESTED, GenerationRequested
from genbus.contracts.topology import DISPATCHER_REQUESTED
from genbus.runtime.consumer import Delivery, RedeliverLater, Unprocessable, register_consumer
from genbus.runtime.deadletter import list_dead_letters, replay_dead_letter
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import broker_access, connect_nats
from genbus.runtime.publisher import encode_event
from genbus.runtime.pull import GenbusBroker
from tests.events import sample_requested

pytestmark = pytest.mark.integration

SPEC = replace(DISPATCHER_REQUESTED, max_deliver=3, retry_delays_s=(0.05,), ack_wait_s=2.0)


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await connect_nats(nats_url)
    stream = nc.jetstream()
    await provision(stream, (SPEC,))
    yield stream
    await nc.close()


async def publish(js: JetStreamContext, event: GenerationRequested) -> None:
    message = encode_event(REQUESTED, event)
    await js.publish(message.subject, message.payload, headers=message.headers)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def run_consumer(
    nats_url: str, handler: Callable[[Delivery[GenerationRequested]], Awaitable[None]]
) -> GenbusBroker:
    broker = GenbusBroker(nats_url, **broker_access(nats_url))
    register_consumer(broker, SPEC, handler, batch_size=8)
    await broker.start()
    return broker


async def test_failures_are_redelivered_not_dropped(nats_url: str, js: JetStreamContext) -> None:
    deliveries: list[int] = []

    async def flaky(delivery: Delivery[GenerationRequested]) -> None:
        deliveries.append(delivery.num_delivered)
        if delivery.num_delivered < 2:
            raise ConnectionError("database briefly unavailable")

    broker = await run_consumer(nats_url, flaky)
    try:
        await publish(js, sample_requested())
        await eventually(lambda: _true(deliveries == [1, 2]))
        await eventually(lambda: _acked(js))
        assert await list_dead_letters(js) == []
    finally:
        await broker.stop()


async def test_redeliver_later_is_a_delayed_nak(nats_url: str, js: JetStreamContext) -> None:
    seen: list[float] = []

    async def later(delivery: Delivery[GenerationRequested]) -> None:
        seen.append(time.monotonic())
        if len(seen) == 1:
            raise RedeliverLater(0.5)

    broker = await run_consumer(nats_url, later)
    try:
        await publish(js, sample_requested())
        await eventually(lambda: _true(len(seen) == 2))
        assert seen[1] - seen[0] >= 0.45
        await eventually(lambda: _acked(js))
    finally:
        await broker.stop()


async def test_poison_and_exhausted_messages_are_dead_lettered_then_replayed(
    nats_url: str, js: JetStreamContext
) -> None:
    fixed = False
    processed: list[str] = []

    async def handler(delivery: Delivery[GenerationRequested]) -> None:
        if delivery.event.params.get("prompt") == "unprocessable":
            raise Unprocessable("prompt marked unprocessable")
        if not fixed:
            raise RuntimeError("bug in the handler")
        processed.append(str(delivery.event.generation_id))

    broker = await run_consumer(nats_url, handler)
    try:
        good_then_bad = sample_requested()
        await publish(js, good_then_bad)
        await js.publish(REQUESTED.subject("sim"), b"{not json", headers={"Nats-Msg-Id": "x1"})
        invalid = sample_requested().model_dump(mode="json")
        del invalid["deadline_at"]
        await js.publish(REQUESTED.subject("sim"), _json(invalid), headers={"Nats-Msg-Id": "x2"})
        await publish(
            js, sample_requested().model_copy(update={"params": {"prompt": "unprocessable"}})
        )

        await eventually(lambda: _count_dead(js, 4))
        letters = await list_dead_letters(js)
        reasons = sorted(letter.reason for letter in letters)
        assert any("invalid GenerationRequested" in r and "<root>" in r for r in reasons)
        assert any("deadline_at" in r for r in reasons)
        assert any(r == "prompt marked unprocessable" for r in reasons)
        exhausted = [r for r in reasons if r.startswith("max deliveries (3) reached")]
        assert len(exhausted) == 1
        assert "bug in the handler" in exhausted[0]
        assert all(letter.consumer == SPEC.durable for letter in letters)
        assert all(letter.original_subject == REQUESTED.subject("sim") for letter in letters)
        await eventually(lambda: _acked(js))

        fixed = True
        target = next(letter for letter in letters if letter.reason.startswith("max deliveries"))
        await replay_dead_letter(js, target.sequence)
        await eventually(lambda: _true(processed == [str(good_then_bad.generation_id)]))
        remaining = await list_dead_letters(js)
        assert target.sequence not in {letter.sequence for letter in remaining}
        assert len(remaining) == 3
    finally:
        await broker.stop()


async def _true(value: bool) -> bool:
    return value


async def _acked(js: JetStreamContext) -> bool:
    info = await js.consumer_info("GENERATIONS", SPEC.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def _count_dead(js: JetStreamContext, count: int) -> bool:
    return len(await list_dead_letters(js)) >= count


def _json(value: object) -> bytes:
    import json

    return json.dumps(value).encode()
