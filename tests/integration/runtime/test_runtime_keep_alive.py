"""Opt-in keep-alive on real JetStream: a message in hand is not redelivered to another consumer
instance, however long its handler takes; without it, the ack wait hands it over (the default)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from genbus.contracts import GENERATIONS_STREAM, REQUESTED, GenerationRequested
from genbus.contracts.topology import DISPATCHER_REQUESTED
from genbus.runtime.consumer import Delivery, register_consumer
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import broker_access, connect_nats
from genbus.runtime.publisher import encode_event
from genbus.runtime.pull import GenbusBroker
from tests.events import sample_requested
from tests.waiting import eventually

pytestmark = pytest.mark.integration
T = TypeVar("T")

SPEC = replace(DISPATCHER_REQUESTED, ack_wait_s=1.0, max_deliver=-1)
#: What a consumer publishes to a message's reply subject (acks, naks, in-progress beats).
ACKS = f"$JS.ACK.{GENERATIONS_STREAM.name}.{SPEC.durable}.>"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect_nats(nats_url)
    await provision(client.jetstream(), (SPEC,))
    yield client
    await client.close()


async def _two_instances(
    nats_url: str,
    handler: Callable[[Delivery[GenerationRequested]], Awaitable[None]],
    keep_alive_s: float | None,
) -> list[GenbusBroker]:
    brokers = []
    for _ in range(2):
        broker = GenbusBroker(nats_url, **broker_access(nats_url))
        register_consumer(broker, SPEC, handler, batch_size=4, keep_alive_s=keep_alive_s)
        await broker.start()
        brokers.append(broker)
    return brokers


async def _publish(js: JetStreamContext) -> None:
    message = encode_event(REQUESTED, sample_requested())
    await js.publish(message.subject, message.payload, headers=message.headers)


async def _run(nc: Client, nats_url: str, keep_alive_s: float | None) -> Rec:
    """Publish one message to two instances whose handler holds it until the caller releases."""
    rec = Rec()
    acks = await nc.subscribe(ACKS, cb=rec.on_ack)

    async def hold(delivery: Delivery[GenerationRequested]) -> None:
        rec.calls.append(delivery.num_delivered)
        rec.in_hand += 1
        try:
            await rec.release.wait()
        finally:
            rec.in_hand -= 1

    rec.brokers = await _two_instances(nats_url, hold, keep_alive_s)
    rec.subscription = acks
    await _publish(nc.jetstream())
    return rec


class Rec:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.acks: list[bytes] = []
        self.in_hand = 0
        self.release = asyncio.Event()
        self.brokers: list[GenbusBroker] = []
        self.subscription: Subscription | None = None

    async def on_ack(self, msg: Msg) -> None:
        self.acks.append(msg.data)

    async def stop(self) -> None:
        self.release.set()
        for broker in self.brokers:
            await broker.stop()
        if self.subscription is not None:
            await self.subscription.unsubscribe()


def _probe(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def probe() -> T:
        return read()

    return probe


async def test_a_kept_alive_message_stays_with_its_handler(nats_url: str, nc: Client) -> None:
    rec = await _run(nc, nats_url, keep_alive_s=0.25)
    try:
        # Six beats: the handler has held the message well past the 1 s ack wait.
        await eventually(_probe(lambda: rec.acks.count(b"+WPI")), lambda n: n >= 6)
        assert rec.calls == [1]
        assert rec.in_hand == 1
        rec.release.set()
        # nats-py acks with an empty payload (the same as +ACK)
        acked = await eventually(_probe(lambda: list(rec.acks)), lambda acks: b"" in acks)
        assert rec.calls == [1]
        # The heartbeat stopped with the handler, before the ack was sent.
        assert set(acked[:-1]) == {b"+WPI"}
        assert acked[-1] == b""
    finally:
        await rec.stop()


async def test_without_keep_alive_the_ack_wait_hands_the_message_over(
    nats_url: str, nc: Client
) -> None:
    rec = await _run(nc, nats_url, keep_alive_s=None)
    try:
        await eventually(_probe(lambda: list(rec.calls)), lambda c: c == [1, 2])
        assert rec.in_hand == 2  # the default is unchanged: redelivered while still in hand
        assert b"+WPI" not in rec.acks
    finally:
        await rec.stop()


def test_keep_alive_must_be_within_the_ack_wait() -> None:
    async def handler(delivery: Delivery[GenerationRequested]) -> None:
        return None

    with pytest.raises(ValueError, match="within the ack wait"):
        register_consumer(NatsBroker(), SPEC, handler, keep_alive_s=SPEC.ack_wait_s)
