"""The webhooks service's consumers: submitted and completed events become deliveries."""

from __future__ import annotations

import asyncio

from faststream.nats import NatsBroker

from genbus.contracts import Event
from genbus.contracts.topology import WEBHOOKS_COMPLETED, WEBHOOKS_SUBMITTED
from genbus.runtime.consumer import Delivery, register_consumer
from genbus.webhooks.service_layer.ingest import ingest_event
from genbus.webhooks.service_layer.ports import Store


def register_consumers(broker: NatsBroker, store: Store, wake: asyncio.Event) -> None:
    """Each event is acked once its deliveries are stored; `wake` tells the worker."""

    async def handle(delivery: Delivery[Event]) -> None:
        if await ingest_event(store, delivery.event):
            wake.set()

    for spec in (WEBHOOKS_SUBMITTED, WEBHOOKS_COMPLETED):
        register_consumer(broker, spec, handle, batch_size=64, max_workers=16)
