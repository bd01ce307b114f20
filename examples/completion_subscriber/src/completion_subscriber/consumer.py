"""The subscriber's durable consumer and what it does with each delivery.

The consumer is declared like the services' own (`genbus.contracts.topology`): a
`ConsumerSpec` of the `COMPLETED` binding, named after this example, so it never shares a
durable with a genbus service (each durable gets every message once; two services sharing one
would split the events between them). It is provisioned explicitly at start-up (create or
update); a new durable starts at the beginning of the stream, so it sees every completion the
stream still holds.

Ack policy (`genbus.runtime.consumer.register_consumer`): a message is acked only after its
notice is committed; a failure is nak'ed with backoff and redelivered; a schema-invalid
message, or one whose notice can never be recorded (`PoisonEvent`), goes to the dead-letter
stream at once with the reason; one that fails `max_deliver` times goes there too. Every dead
letter is logged with its reason and is listed by `genbus deadletters list`.
"""

from __future__ import annotations

import asyncio

from completion_subscriber.store import NoticeStore, PoisonEvent
from genbus.contracts import COMPLETED, ConsumerSpec, GenerationCompleted
from genbus.runtime.consumer import Delivery, Unprocessable
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

#: This example's own name: its durable consumer's name derives from it.
NAME = "completion-subscriber"

CONSUMER = ConsumerSpec(
    f"{NAME}-completed",
    COMPLETED,
    service=NAME,
    ack_wait_s=5.0,
    max_deliver=5,
)


class NoticeHandler:
    """Records one notice per `GenerationCompleted`, exactly once."""

    def __init__(self, store: NoticeStore, *, work_s: float = 0.0) -> None:
        self._store = store
        #: Simulated work before the effect (the tests use it to be killed mid-way).
        self._work_s = work_s
        # One writer at a time on the one connection.
        self._lock = asyncio.Lock()

    async def __call__(self, delivery: Delivery[GenerationCompleted]) -> None:
        event = delivery.event
        if self._work_s:
            await asyncio.sleep(self._work_s)
        async with self._lock:
            try:
                recorded = await asyncio.to_thread(self._store.record_once, event)
            except PoisonEvent as exc:
                raise Unprocessable(str(exc)) from exc
        if recorded:
            log.info(
                "notice recorded", status=event.status.value, deliveries=delivery.num_delivered
            )
        else:
            log.info("duplicate event skipped", deliveries=delivery.num_delivered)
