"""The webhooks service's consumers: which handler runs when which event arrives.

Submitted and completed events become deliveries; each event is acked once its deliveries are
stored, and the delivery worker is woken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from faststream.nats import NatsBroker

from genbus.contracts import ConsumerSpec, Event
from genbus.contracts.topology import WEBHOOKS_COMPLETED, WEBHOOKS_SUBMITTED
from genbus.runtime.consumer import Delivery, register_consumer
from genbus.webhooks.service_layer.ingest import ingest_event
from genbus.webhooks.service_layer.ports import Store

#: `(store, event)` -> how many new deliveries were stored.
EventHandler = Callable[[Store, Event], Awaitable[int]]

EVENT_HANDLERS: Mapping[ConsumerSpec, EventHandler] = {
    WEBHOOKS_SUBMITTED: ingest_event,
    WEBHOOKS_COMPLETED: ingest_event,
}


def register_consumers(broker: NatsBroker, store: Store, wake: asyncio.Event) -> None:
    """Subscribe every webhooks consumer; call before `broker.start()`."""
    for spec, handler in EVENT_HANDLERS.items():

        async def handle(delivery: Delivery[Event], handler: EventHandler = handler) -> None:
            if await handler(store, delivery.event):
                wake.set()

        register_consumer(broker, spec, handle, batch_size=64, max_workers=16)
