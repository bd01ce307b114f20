"""Who publishes and who consumes each event: the one table a topology test checks."""

from __future__ import annotations

from dataclasses import dataclass

from genbus.contracts.bindings import (
    CANCEL_REQUESTED,
    COMPLETED,
    REQUESTED,
    SUBMITTED,
    WAITING,
    EventBinding,
)
from genbus.contracts.events import Event
from genbus.contracts.streams import ConsumerSpec


@dataclass(frozen=True)
class ServiceTopology:
    name: str
    publishes: tuple[EventBinding[Event], ...]
    consumes: tuple[ConsumerSpec, ...]


API_SUBMITTED = ConsumerSpec("api-submitted", SUBMITTED, service="api")
API_COMPLETED = ConsumerSpec("api-completed", COMPLETED, service="api")
API_WAITING = ConsumerSpec("api-waiting", WAITING, service="api")
DISPATCHER_REQUESTED = ConsumerSpec(
    "dispatcher-requested",
    REQUESTED,
    service="dispatcher",
)
DISPATCHER_COMPLETED = ConsumerSpec(
    "dispatcher-completed",
    COMPLETED,
    service="dispatcher",
)
DISPATCHER_CANCEL = ConsumerSpec(
    "dispatcher-cancel-requested",
    CANCEL_REQUESTED,
    service="dispatcher",
)
# JetStream redelivery is the poller's timer: one message per in-flight provider job, nak'ed
# with a delay until the job is done. Deliveries are unbounded; the event's deadline bounds them.
POLLER_SUBMITTED = ConsumerSpec(
    "poller-submitted",
    SUBMITTED,
    service="poller",
    ack_wait_s=5.0,
    max_deliver=-1,
    max_ack_pending=20_000,
)
# The webhooks service turns these into deliveries (queued in its own tables, sent by its
# delivery worker): a message is acked once its deliveries are stored.
WEBHOOKS_SUBMITTED = ConsumerSpec("webhooks-submitted", SUBMITTED, service="webhooks")
WEBHOOKS_COMPLETED = ConsumerSpec("webhooks-completed", COMPLETED, service="webhooks")

CONSUMERS: tuple[ConsumerSpec, ...] = (
    API_SUBMITTED,
    API_COMPLETED,
    API_WAITING,
    DISPATCHER_REQUESTED,
    DISPATCHER_COMPLETED,
    DISPATCHER_CANCEL,
    POLLER_SUBMITTED,
    WEBHOOKS_SUBMITTED,
    WEBHOOKS_COMPLETED,
)

SERVICES: dict[str, ServiceTopology] = {
    "api": ServiceTopology(
        "api",
        publishes=(REQUESTED, CANCEL_REQUESTED),
        consumes=(API_SUBMITTED, API_COMPLETED, API_WAITING),
    ),
    "dispatcher": ServiceTopology(
        "dispatcher",
        publishes=(SUBMITTED, COMPLETED, WAITING),
        consumes=(DISPATCHER_REQUESTED, DISPATCHER_COMPLETED, DISPATCHER_CANCEL),
    ),
    "poller": ServiceTopology(
        "poller",
        publishes=(COMPLETED,),
        consumes=(POLLER_SUBMITTED,),
    ),
    "webhooks": ServiceTopology(
        "webhooks",
        publishes=(),
        consumes=(WEBHOOKS_SUBMITTED, WEBHOOKS_COMPLETED),
    ),
}
