"""Running a service process: signals, graceful shutdown, and the NATS broker it consumes with."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import nats.errors
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from nats.js import JetStreamContext
from nats.js.errors import APIError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import GENERATIONS_STREAM, KvBinding, ServiceTopology
from genbus.runtime.http_server import ReadinessCheck
from genbus.runtime.jetstream import provision_consumer
from genbus.runtime.logging import get_logger
from genbus.runtime.nats_client import NatsAccess, nats_servers
from genbus.runtime.pull import GenbusBroker
from genbus.runtime.settings import RuntimeSettings

__all__ = [
    "connect_and_bind",
    "database_readiness",
    "make_broker",
    "nats_readiness",
    "nats_servers",
    "open_kv",
    "run_service",
    "run_until_stopped",
    "until_provisioned",
]

log = get_logger(__name__)

ServiceMain = Callable[[asyncio.Event], Awaitable[None]]


class Lifecycle(Protocol):
    """What every service's runtime (its `bootstrap()`'s result) does."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_stopped(
    runtime: Lifecycle,
    stop: asyncio.Event,
    *,
    wait: Callable[[asyncio.Event], Awaitable[None]] | None = None,
) -> None:
    """Start `runtime`, wait until `stop` is set (or until `wait(stop)` returns, for a runtime
    that can also end on its own), then stop it, whatever happened."""
    await runtime.start()
    try:
        await (wait(stop) if wait is not None else stop.wait())
    finally:
        await runtime.stop()


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


def make_broker(
    nats_url: str,
    name: str,
    *,
    app_name: str | None = None,
    registry: CollectorRegistry = REGISTRY,
    graceful_timeout: float = 15.0,
    access: NatsAccess | None = None,
) -> GenbusBroker:
    """A FastStream NATS broker that reconnects forever: a NATS restart costs latency, not work.

    `nats_url` may list several servers (comma-separated): the client connects to any of them
    and fails over to the others. Consumers registered with `genbus.runtime.consumer` pull with
    nats-py directly and measure and trace themselves; anything FastStream itself subscribes or
    publishes is measured (Prometheus, `faststream_*` on `registry`, labelled `app_name`,
    default `name`) and traced (OpenTelemetry: a no-op until
    `genbus.runtime.tracing.configure_tracing` turns tracing on). On stop, handlers in hand
    get `graceful_timeout` seconds to finish. `access` (identity, TLS) defaults to the
    process's settings (`GENBUS_NATS_USER`, `GENBUS_NATS_PASSWORD`, `GENBUS_NATS_TLS_CA`).
    """
    if access is None:
        access = NatsAccess.from_settings(RuntimeSettings(), nats_url)
    return GenbusBroker(
        nats_servers(nats_url),
        **access.broker_options(),
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


async def connect_and_bind(
    broker: NatsBroker,
    topology: ServiceTopology,
    *,
    timeout_s: float = 60.0,
) -> JetStreamContext:
    """Connect, wait for the provisioned streams, create or update this service's durable
    consumers, and return a JetStream context.

    Streams and KV buckets are made by the privileged provisioning step
    (`genbus.runtime.provision`), never by a service: a service only brings its own durables
    to their contract config (its NATS user may do exactly that). Until the stream exists
    (provisioning still running) or while a JetStream cluster elects its leaders, this is
    retried for up to `timeout_s`.
    """
    await broker.connect()
    js = broker.connection.jetstream()

    async def bind() -> None:
        await js.stream_info(GENERATIONS_STREAM.name)
        for spec in topology.consumes:
            await provision_consumer(js, GENERATIONS_STREAM, spec)

    await until_provisioned(bind, timeout_s)
    log.info("jetstream bound", consumers=[c.durable for c in topology.consumes])
    return js


async def open_kv(
    js: JetStreamContext, binding: KvBinding[Any], timeout_s: float = 60.0
) -> KeyValue:
    """The provisioned key-value bucket of `binding`, waiting for provisioning if needed."""
    kv: list[KeyValue] = []

    async def bind() -> None:
        kv.append(await js.key_value(binding.bucket))

    await until_provisioned(bind, timeout_s)
    return kv[0]


async def until_provisioned(step: Callable[[], Awaitable[None]], timeout_s: float) -> None:
    """Run `step` until it does not fail for want of provisioning or of a JetStream leader."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.25
    while True:
        try:
            await step()
            return
        except Exception as exc:
            if not _not_provisioned_yet(exc) or loop.time() + delay > deadline:
                raise
            log.warning("jetstream not provisioned or not ready, retrying", error=repr(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _not_provisioned_yet(exc: BaseException) -> bool:
    return isinstance(exc, (NotFoundError, BucketNotFoundError)) or _jetstream_not_ready(exc)


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
