"""Running a service process: signals, graceful shutdown, and the NATS broker it consumes with."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import GENERATIONS_STREAM, ServiceTopology
from genbus.runtime.http_server import ReadinessCheck
from genbus.runtime.jetstream import provision
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

ServiceMain = Callable[[asyncio.Event], Awaitable[None]]


def run_service(main: ServiceMain) -> None:
    """Run `main(stop)` until it returns; SIGTERM/SIGINT set `stop` for a graceful shutdown."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def make_broker(nats_url: str, name: str) -> NatsBroker:
    """A FastStream NATS broker that reconnects forever: a NATS restart costs latency, not work."""
    return NatsBroker(
        nats_url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        graceful_timeout=15.0,
        # Through our structured logging; per-message lines at DEBUG, errors still at ERROR.
        logger=logging.getLogger("genbus.faststream"),
        log_level=logging.DEBUG,
    )


async def connect_and_provision(
    broker: NatsBroker, topology: ServiceTopology, replicas: int | None = None
) -> JetStreamContext:
    """Connect, provision streams and this service's consumers, and return a JetStream context."""
    await broker.connect()
    js = broker.connection.jetstream()
    await provision(js, topology.consumes, replicas)
    log.info("jetstream provisioned", consumers=[c.durable for c in topology.consumes])
    return js


def nats_readiness(broker: NatsBroker, topology: ServiceTopology) -> ReadinessCheck:
    """Ready when connected to NATS and every consumer of this service exists."""

    async def check() -> None:
        connection = broker.connection
        if not connection.is_connected:
            raise ConnectionError("not connected to NATS")
        js = connection.jetstream()
        for spec in topology.consumes:
            await js.consumer_info(GENERATIONS_STREAM.name, spec.durable)

    return check


def database_readiness(engine: AsyncEngine) -> ReadinessCheck:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check
