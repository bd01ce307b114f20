"""The poller's one consumer: a submitted provider job, redelivered until it ends."""

from __future__ import annotations

from faststream.nats import NatsBroker

from genbus.contracts import GenerationSubmitted
from genbus.contracts.topology import POLLER_SUBMITTED
from genbus.poller.service_layer.deps import PollerDeps
from genbus.poller.service_layer.polling import poll_submitted
from genbus.runtime.consumer import Delivery, register_consumer


def register_consumers(broker: NatsBroker, deps: PollerDeps, batch_size: int = 256) -> None:
    async def submitted(delivery: Delivery[GenerationSubmitted]) -> None:
        await poll_submitted(deps, delivery.event)

    register_consumer(broker, POLLER_SUBMITTED, submitted, batch_size=batch_size)
