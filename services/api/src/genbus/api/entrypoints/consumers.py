"""The api's event consumers: which handler runs when which event arrives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from faststream.nats import NatsBroker

from genbus.api.domain.errors import GenerationNotFound
from genbus.api.service_layer import handlers
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.contracts import ConsumerSpec, Event
from genbus.contracts.topology import API_COMPLETED, API_SUBMITTED, API_WAITING
from genbus.runtime.consumer import (
    BatchHandler,
    Delivery,
    Handler,
    Unprocessable,
    register_consumer,
)

E_contra = TypeVar("E_contra", bound=Event, contravariant=True)


class EventHandler(Protocol[E_contra]):
    async def __call__(self, event: E_contra, uow: UnitOfWork, *, now: datetime) -> object: ...


class BatchEventHandler(Protocol[E_contra]):
    async def __call__(
        self, events: Sequence[E_contra], uow: UnitOfWork, *, now: datetime
    ) -> object: ...


class ConsumerDeps(Protocol):
    """What consumers need from the runtime: a fresh unit of work per message, and the time."""

    def uow(self) -> UnitOfWork: ...

    def clock(self) -> datetime: ...


#: Each consumer's handler for one event, and for the events pulled together (one transaction).
EVENT_HANDLERS: Mapping[ConsumerSpec, tuple[EventHandler[Any], BatchEventHandler[Any]]] = {
    API_SUBMITTED: (handlers.on_generation_submitted, handlers.on_generations_submitted),
    API_COMPLETED: (handlers.on_generation_completed, handlers.on_generations_completed),
    API_WAITING: (handlers.on_generation_waiting, handlers.on_generations_waiting),
}


def register_consumers(broker: NatsBroker, deps: ConsumerDeps) -> None:
    """Subscribe every api consumer; call before `broker.start()`."""
    for spec, (handler, batch_handler) in EVENT_HANDLERS.items():
        register_consumer(
            broker,
            spec,
            _consume_with(handler, deps),
            batch_handler=_consume_together_with(batch_handler, deps),
        )


def _consume_with(handler: EventHandler[Any], deps: ConsumerDeps) -> Handler[Any]:
    async def consume(delivery: Delivery[Any]) -> None:
        try:
            await handler(delivery.event, deps.uow(), now=deps.clock())
        except GenerationNotFound as exc:
            # Generations are committed before their first event is published, so an event
            # for an unknown one will never become processable: keep it for inspection.
            raise Unprocessable(f"unknown generation: {exc}") from exc

    return consume


def _consume_together_with(
    handler: BatchEventHandler[Any], deps: ConsumerDeps
) -> BatchHandler[Any]:
    async def consume(deliveries: Sequence[Delivery[Any]]) -> None:
        # Any failure (an unknown generation included) makes the runtime apply them one by one.
        await handler([d.event for d in deliveries], deps.uow(), now=deps.clock())

    return consume
