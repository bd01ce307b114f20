"""Running a service process: signals, graceful shutdown, and the NATS broker it consumes with."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import nats.errors
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from nats.js import JetStreamContext
from nats.js.errors import APIError
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import GENERATIONS_STREAM, ServiceTopology, StreamSpec
from genbus.runtime.http_server import ReadinessCheck
from genbus.runtime.jetstream import provision
from genbus.runtime.logging import get_logger
from genbus.runtime.settings import RuntimeSettings

log = get_logger(__name__)

ServiceMain = Callable[[asyncio.Event], Awaitable[None]]


def run_service(main: ServiceMain) -> None:
    """Run `main(stop)` until it returns; SIGTERM/SIGINT set `stop` for a graceful shutdown.

    The loop is uvloop's where it exists (as uvicorn picks for the api): the services spend most
    of their time in socket I/O, which asyncio's pure-Python transports make costly.
    """

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, PyPy
        asyncio.run(runner())
    else:
        uvloop.run(runner())


def nats_servers(nats_url: str) -> list[str]:
    """`NATS_URL` as a server list: one URL, or several comma-separated (a cluster's seeds)."""
    servers = [url.strip() for url in nats_url.split(",") if url.strip()]
    if not servers:
        raise ValueError("NATS_URL names no server")
    return servers


def make_broker(
    nats_url: str,
    name: str,
    *,
    app_name: str | None = None,
    registry: CollectorRegistry = REGISTRY,
    graceful_timeout: float = 15.0,
) -> NatsBroker:
    """A FastStream NATS broker that reconnects forever: a NATS restart costs latency, not work.

    `nats_url` may list several servers (comma-separated): the client connects to any of them
    and fails over to the others. Every subscriber is measured (Prometheus, `faststream_*` on
    `registry`, labelled `app_name`, default `name`) and traced (OpenTelemetry: a no-op until
    `genbus.runtime.tracing.configure_tracing` turns tracing on). On stop, handlers in hand
    get `graceful_timeout` seconds to finish.
    """
    return NatsBroker(
        nats_servers(nats_url),
        name=name,
        middlewares=(
            NatsPrometheusMiddleware(registry=registry, app_name=app_name or name),
            NatsTelemetryMiddleware(),
        ),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        graceful_timeout=graceful_timeout,
        # Through our structured logging; per-message lines at DEBUG, errors still at ERROR.
        logger=logging.getLogger("genbus.faststream"),
        log_level=logging.DEBUG,
    )


async def connect_and_provision(
    broker: NatsBroker,
    topology: ServiceTopology,
    replicas: int | None = None,
    *,
    streams: tuple[StreamSpec, StreamSpec] | None = None,
    timeout_s: float = 60.0,
) -> JetStreamContext:
    """Connect, provision streams and this service's consumers, and return a JetStream context.

    `replicas` defaults to `GENBUS_STREAM_REPLICAS`: every service provisions the same streams,
    so they must all ask for the same replication. A JetStream cluster that is still electing
    its leaders answers late or "unavailable": that is retried for up to `timeout_s`.
    `streams` (the event and dead-letter streams with their size bounds) default to
    `RuntimeSettings().streams()`, from `GENBUS_STREAM_MAX_BYTES` and friends.
    """
    await broker.connect()
    js = broker.connection.jetstream()
    if replicas is None:
        replicas = RuntimeSettings().stream_replicas
    if streams is None:
        streams = RuntimeSettings().streams()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.25
    while True:
        try:
            await provision(js, topology.consumes, replicas, streams)
            break
        except Exception as exc:
            if not _jetstream_not_ready(exc) or loop.time() + delay > deadline:
                raise
            log.warning("jetstream not ready, retrying", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    log.info("jetstream provisioned", consumers=[c.durable for c in topology.consumes])
    return js


def _jetstream_not_ready(exc: BaseException) -> bool:
    if isinstance(exc, (nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        return True
    return isinstance(exc, APIError) and (exc.code or 0) >= 500


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
