"""The dispatcher's JetStream consumers: thin wrappers that hand each event to its handler."""

from __future__ import annotations

from collections.abc import Sequence

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
        await handlers.on_generation_requested(deps, delivery.event, delivery.trace_context)

    async def requested_together(deliveries: Sequence[Delivery[GenerationRequested]]) -> None:
        # In the order they were published: the queue keeps arrival order among equals.
        in_order = sorted(deliveries, key=lambda d: d.stream_sequence)
        await handlers.on_generations_requested(
            deps, [(d.event, d.trace_context) for d in in_order]
        )

    async def completed(delivery: Delivery[GenerationCompleted]) -> None:
        await handlers.on_generation_completed(deps, delivery.event)

    async def completed_together(deliveries: Sequence[Delivery[GenerationCompleted]]) -> None:
        await handlers.on_generations_completed(deps, [d.event for d in deliveries])

    async def cancel_requested(delivery: Delivery[GenerationCancelRequested]) -> None:
        await handlers.on_cancel_requested(deps, delivery.event)

    register_consumer(
        broker, DISPATCHER_REQUESTED, requested, batch_size=64, batch_handler=requested_together
    )
    register_consumer(
        broker, DISPATCHER_COMPLETED, completed, batch_size=64, batch_handler=completed_together
    )
    register_consumer(broker, DISPATCHER_CANCEL, cancel_requested, batch_size=16)
