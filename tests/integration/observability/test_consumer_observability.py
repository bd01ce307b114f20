"""Inside a handler every log line names the event; dead letters are counted by reason class."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from genbus.contracts import REQUESTED, GenerationRequested
from genbus.contracts.topology import DISPATCHER_REQUESTED
from genbus.runtime.consumer import Delivery, Unprocessable, register_consumer
from genbus.runtime.jetstream import provision
from genbus.runtime.nats_client import connect_nats
from genbus.runtime.publisher import encode_event
from genbus.runtime.service import make_broker
from tests.events import sample_requested

pytestmark = pytest.mark.integration

SPEC = replace(DISPATCHER_REQUESTED, durable="observability-requested")


def _dead(reason: str) -> float:
    labels = {"consumer": SPEC.durable, "reason": reason}
    return REGISTRY.get_sample_value("genbus_dead_letters_total", labels) or 0.0


async def test_handler_logs_carry_the_event_and_dead_letters_are_counted(nats_url: str) -> None:
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    await provision(js, (SPEC,))
    seen: list[dict[str, Any]] = []
    poison = sample_requested()

    async def handler(delivery: Delivery[GenerationRequested]) -> None:
        seen.append(dict(structlog.contextvars.get_contextvars()))
        if delivery.event.generation_id == poison.generation_id:
            raise Unprocessable("never")

    broker = make_broker(nats_url, "observability-test")
    register_consumer(broker, SPEC, handler)
    invalid, unprocessable = _dead("invalid"), _dead("unprocessable")
    good = sample_requested()
    await broker.start()
    try:
        for event in (good, poison):
            message = encode_event(REQUESTED, event)
            await js.publish(message.subject, message.payload, headers=message.headers)
        await js.publish(REQUESTED.subject("sim"), b"{not json", headers={"Nats-Msg-Id": "bad"})
        deadline = time.monotonic() + 15
        while _dead("invalid") < invalid + 1 or _dead("unprocessable") < unprocessable + 1:
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.05)
    finally:
        await broker.stop()
        await nc.close()
    assert {
        "generation_id": str(good.generation_id),
        "event_id": str(good.event_id),
        "consumer": SPEC.durable,
    } in seen
    # Bound for the handler only: nothing leaks into what runs after it.
    assert structlog.contextvars.get_contextvars() == {}
    assert _dead("invalid") == invalid + 1
    assert _dead("unprocessable") == unprocessable + 1
