"""The dispatcher's event consumers: which handler runs when which event arrives.

`EVENT_HANDLERS` is the one table. Each handler gets the event (or the events pulled together,
applied in one transaction), a fresh unit of work, and the dependencies it names as
keyword-only parameters, taken from `handler_dependencies` (cosmicpython's injection).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.nats import NatsBroker

from genbus.contracts import ConsumerSpec, Event, GenerationRequested
from genbus.contracts.topology import (
    DISPATCHER_CANCEL,
    DISPATCHER_COMPLETED,
    DISPATCHER_REQUESTED,
)
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.service_layer import handlers
from genbus.dispatcher.service_layer.observability import with_trace_context
from genbus.runtime.consumer import Delivery, register_consumer

HandlerFn = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class EventHandling:
    """How one consumer's events are handled."""

    #: `(events, uow, **deps)` when `together`, else `(event, uow, **deps)`.
    handler: HandlerFn
    #: Several events pulled together are handled in one call (one transaction); a failure
    #: makes the runtime apply them one by one.
    together: bool
    batch_size: int


EVENT_HANDLERS: Mapping[ConsumerSpec, EventHandling] = {
    DISPATCHER_REQUESTED: EventHandling(handlers.on_generations_requested, True, 64),
    DISPATCHER_COMPLETED: EventHandling(handlers.on_generations_completed, True, 64),
    DISPATCHER_CANCEL: EventHandling(handlers.on_cancel_requested, False, 16),
}


def handler_dependencies(deps: Deps) -> dict[str, object]:
    """Every dependency a handler may name, by parameter name."""
    return {
        "wake": deps.wake.set,
        "unfollowed_slot_hold_s": deps.settings.unfollowed_slot_hold_s,
        "adapters": deps.adapters,
        "cipher": deps.cipher,
    }


def register_consumers(broker: NatsBroker, deps: Deps) -> None:
    """Subscribe every dispatcher consumer; call before `broker.start()`."""
    for spec, handling in EVENT_HANDLERS.items():
        handler = _inject(handling.handler, deps)
        if handling.together:

            async def one(delivery: Delivery[Any], handler: HandlerFn = handler) -> None:
                await handler([_as_queued(delivery)], deps.uow())

            async def together(
                deliveries: Sequence[Delivery[Any]], handler: HandlerFn = handler
            ) -> None:
                # In the order they were published: the queue keeps arrival order among equals.
                in_order = sorted(deliveries, key=lambda d: d.stream_sequence)
                await handler([_as_queued(d) for d in in_order], deps.uow())

            register_consumer(
                broker, spec, one, batch_size=handling.batch_size, batch_handler=together
            )
        else:

            async def single(delivery: Delivery[Any], handler: HandlerFn = handler) -> None:
                await handler(delivery.event, deps.uow())

            register_consumer(broker, spec, single, batch_size=handling.batch_size)


def _inject(handler: HandlerFn, deps: Deps) -> HandlerFn:
    """`handler` given the keyword-only dependencies it names (taken when it runs)."""
    names = [
        name
        for name, param in inspect.signature(handler).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    ]

    async def bound(*args: Any) -> None:
        available = handler_dependencies(deps)
        await handler(*args, **{name: available[name] for name in names})

    return bound


def _as_queued(delivery: Delivery[Any]) -> Event:
    """A requested generation is queued with the trace context it came in with."""
    event: Event = delivery.event
    if isinstance(event, GenerationRequested):
        return with_trace_context(event, delivery.trace_context)
    return event
