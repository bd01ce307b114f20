"""The dispatcher's JetStream consumers: thin wrappers that hand each event to its handler."""

from __future__ import annotations

from faststream.nats import NatsBroker

from genbus.contracts import GenerationCancelRequested, GenerationCompleted, GenerationRequested
from genbus.contracts.topology import (
    DISPATCHER_CANCEL,
    DISPATCHER_COMPLETED,
    DISPATCHER_REQUESTED,
)
from genbus.dispatcher.service_layer import handlers
from genbus.dispatcher.service_layer.deps import Deps
from genbus.runtime.consumer import Delivery, register_consumer


def register_consumers(broker: NatsBroker, deps: Deps) -> None:
    async def requested(delivery: Delivery[GenerationRequested]) -> None:
        await handlers.on_generation_requested(deps, delivery.event)

    async def completed(delivery: Delivery[GenerationCompleted]) -> None:
        await handlers.on_generation_completed(deps, delivery.event)

    async def cancel_requested(delivery: Delivery[GenerationCancelRequested]) -> None:
        await handlers.on_cancel_requested(deps, delivery.event)

    register_consumer(broker, DISPATCHER_REQUESTED, requested, batch_size=64)
    register_consumer(broker, DISPATCHER_COMPLETED, completed, batch_size=64)
    register_consumer(broker, DISPATCHER_CANCEL, cancel_requested, batch_size=16)
