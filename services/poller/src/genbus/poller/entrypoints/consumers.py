"""The poller's one consumer: a submitted provider job, redelivered until it ends.

Messages are handled one by one, concurrently (never a pull at a time), each under its
provider's bulkhead (`service_layer.bulkheads`). A poll in hand is kept alive with `+WPI`
heartbeats, and its status call is bounded by 80 % of the ack wait, so a job being polled is
never handed to a second replica meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from faststream.nats import NatsBroker

from genbus.contracts import ConsumerSpec, GenerationSubmitted
from genbus.contracts.topology import POLLER_SUBMITTED
from genbus.poller.dependencies import PollerDeps
from genbus.poller.service_layer.bulkheads import (
    ProviderBulkheads,
    poll_within_budget,
    worker_limit,
)
from genbus.poller.service_layer.polling import STATUS_SHARE_OF_ACK_WAIT
from genbus.runtime.consumer import Delivery, register_consumer

#: Share of the ack wait between two in-progress heartbeats of a poll in hand.
HEARTBEAT_SHARE_OF_ACK_WAIT = 1 / 3


class PollHandler(Protocol):
    async def __call__(
        self,
        deps: PollerDeps,
        bulkheads: ProviderBulkheads,
        event: GenerationSubmitted,
        status_budget_s: float | None = None,
    ) -> None: ...


#: Which handler runs when which event arrives (the poller has one consumer).
EVENT_HANDLERS: Mapping[ConsumerSpec, PollHandler] = {POLLER_SUBMITTED: poll_within_budget}


def register_consumers(
    broker: NatsBroker,
    deps: PollerDeps,
    *,
    batch_size: int = 256,
    max_polls_per_provider: int = 64,
    providers: int = 1,
    spec: ConsumerSpec = POLLER_SUBMITTED,
    status_budget_s: float | None = None,
) -> ProviderBulkheads:
    """Subscribe the poller to `spec`, `max_polls_per_provider` polls at once for each of
    `providers` providers; returns the bulkheads. `status_budget_s` defaults to 80 % of the
    spec's ack wait."""
    bulkheads = ProviderBulkheads(max_polls_per_provider)
    budget = (
        spec.ack_wait_s * STATUS_SHARE_OF_ACK_WAIT if status_budget_s is None else status_budget_s
    )

    handler = EVENT_HANDLERS[POLLER_SUBMITTED]

    async def submitted(delivery: Delivery[GenerationSubmitted]) -> None:
        await handler(deps, bulkheads, delivery.event, budget)

    register_consumer(
        broker,
        spec,
        submitted,
        batch_size=batch_size,
        max_workers=worker_limit(max_polls_per_provider, providers, batch_size),
        keep_alive_s=spec.ack_wait_s * HEARTBEAT_SHARE_OF_ACK_WAIT,
    )
    return bulkheads
