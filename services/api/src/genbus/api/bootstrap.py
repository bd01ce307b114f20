"""Wiring: the one place that knows the concrete engine, broker, relay and catalog classes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from faststream.nats import NatsBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.adapters.providers import CapabilitiesCatalog
from genbus.api.adapters.tables import outbox
from genbus.api.config import ApiSettings
from genbus.api.domain.requests import ProviderCatalog, RequestLimits
from genbus.api.entrypoints.consumers import register_consumers
from genbus.api.entrypoints.reconciler import run_reconciler
from genbus.api.service_layer.unit_of_work import SqlUnitOfWork
from genbus.contracts import SERVICES
from genbus.runtime.db import create_engine
from genbus.runtime.logging import get_logger
from genbus.runtime.outbox import OutboxRelay
from genbus.runtime.publisher import EventPublisher
from genbus.runtime.service import connect_and_provision, make_broker

log = get_logger(__name__)

TOPOLOGY = SERVICES["api"]
_READY_TIMEOUT_S = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class ApiRuntime:
    """Everything the api process runs: built by `bootstrap`, started by the HTTP lifespan."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        engine: AsyncEngine,
        broker: NatsBroker,
        catalog: ProviderCatalog,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.catalog = catalog
        self.clock = clock
        self.limits = RequestLimits(default_deadline=timedelta(seconds=settings.default_deadline_s))
        self.relay: OutboxRelay | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def uow(self) -> SqlUnitOfWork:
        """A fresh unit of work (one per request or message)."""
        return SqlUnitOfWork(self.engine, outbox, TOPOLOGY, self._wake_relay)

    async def start(self) -> None:
        """Provision JetStream, subscribe, then start the relay and the reconciler."""
        js = await connect_and_provision(self.broker, TOPOLOGY)
        self.relay = OutboxRelay(self.engine, outbox, EventPublisher(js, TOPOLOGY))
        register_consumers(self.broker, self)
        await self.broker.start()
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self.relay.run(), name="outbox-relay"),
            asyncio.create_task(
                run_reconciler(
                    self.uow,
                    self.clock,
                    interval_s=self.settings.reconcile_interval_s,
                    grace=timedelta(seconds=self.settings.deadline_grace_s),
                    stop=self._stop,
                ),
                name="deadline-reconciler",
            ),
        ]
        log.info("api started")

    async def stop(self) -> None:
        """Stop the background loops, drain the consumers, then close the database pool.

        The relay stops first: it publishes over the broker's connection, which draining closes.
        Unpublished rows stay in the outbox for the next start.
        """
        self._stop.set()
        if self.relay is not None:
            self.relay.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_s)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        try:
            await self.broker.stop()
        finally:
            await self.engine.dispose()
        log.info("api stopped")

    async def readiness(self) -> dict[str, bool]:
        """Whether Postgres answers a query and NATS is connected."""
        return {
            "postgres": await self._postgres_ready(),
            "nats": await self.broker.ping(timeout=_READY_TIMEOUT_S),
        }

    async def _postgres_ready(self) -> bool:
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.notify()


def bootstrap(settings: ApiSettings) -> ApiRuntime:
    """Build the runtime; nothing connects until `start()`."""
    return ApiRuntime(
        settings,
        engine=create_engine(settings.database_url),
        broker=make_broker(settings.nats_url, "genbus-api"),
        catalog=CapabilitiesCatalog(),
    )
