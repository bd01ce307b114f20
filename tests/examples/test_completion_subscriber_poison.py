"""The example subscriber's consumer on a real NATS, in process: an event whose effect keeps
failing is redelivered with backoff, then dead-lettered after `max_deliver` deliveries with the
reason (and the last error), never retried forever and never acked without its effect."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from completion_subscriber.connection import NatsOptions, make_broker
from completion_subscriber.consumer import CONSUMER, NoticeHandler

from genbus.contracts import COMPLETED, GENERATIONS_STREAM, GenerationCompleted
from genbus.runtime.consumer import register_consumer
from genbus.runtime.deadletter import list_dead_letters
from genbus.runtime.jetstream import provision, provision_consumer
from genbus.runtime.nats_client import connect_nats
from tests.waiting import eventually

pytestmark = pytest.mark.integration


class BrokenStore:
    """A store whose every write fails (a full disk, a locked database)."""

    def __init__(self) -> None:
        self.tries = 0

    def record_once(self, event: GenerationCompleted) -> bool:
        self.tries += 1
        raise sqlite3.OperationalError("database is locked")


async def test_an_effect_that_keeps_failing_is_dead_lettered_after_max_deliver(
    nats_url: str,
) -> None:
    event = GenerationCompleted.model_validate(
        {
            "event_id": uuid4(),
            "occurred_at": datetime.now(UTC),
            "generation_id": uuid4(),
            "user_id": "u",
            "provider_id": "sim",
            "operation_type": "text_to_video",
            "status": "cancelled",
        }
    )
    store = BrokenStore()
    ca = os.environ.get("GENBUS_NATS_TLS_CA")  # the test server's CA (TLS is on)
    broker = make_broker(NatsOptions(nats_url, tls_ca=Path(ca) if ca else None), "poison-test")
    register_consumer(broker, CONSUMER, NoticeHandler(store))  # type: ignore[arg-type]
    await broker.connect()
    js = broker.connection.jetstream()
    await provision(js, (), replicas=1)
    await provision_consumer(js, GENERATIONS_STREAM, CONSUMER)
    await broker.start()
    try:
        await js.publish(COMPLETED.subject("sim"), event.model_dump_json().encode())

        async def letters() -> list[str]:
            found = await list_dead_letters(js)
            return [d.reason for d in found if d.consumer == CONSUMER.durable]

        (reason,) = await eventually(letters, lambda r: len(r) == 1, timeout=30)
    finally:
        await broker.stop()
    assert store.tries == CONSUMER.max_deliver
    assert f"max deliveries ({CONSUMER.max_deliver}) reached" in reason
    assert "database is locked" in reason
    nc = await connect_nats(nats_url)
    try:
        info = await nc.jetstream().consumer_info(GENERATIONS_STREAM.name, CONSUMER.durable)
    finally:
        await nc.close()
    assert (info.num_pending, info.num_ack_pending) == (0, 0)  # terminated, not left pending
