"""The api's event consumers and background loops, apart from HTTP.

`ConsumerRuntime` runs the `submitted` / `completed` projections, the deadline reconciler and
the purger (and, in a process of its own, an outbox relay for what they publish), with its own
database pool and NATS connection. It runs either

- as a deployable of its own: `genbus-api consumers` (`GENBUS_API_ROLE=consumers`), beside
  api replicas serving HTTP only (`GENBUS_API_ROLE=http`); or
- inside the HTTP process (`GENBUS_API_ROLE=all`, the default) on an event loop of its own in
  a thread (`ConsumersThread`): however many requests the HTTP loop has in hand, the
  consumers' loop is never behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.adapters.notifications import ChangeNotifier
from genbus.api.adapters.tables import outbox
from genbus.api.config import ApiSettings
from genbus.api.entrypoints.archiver import archiver_from_env
from genbus.api.entrypoints.consumers import register_consumers
from genbus.api.entrypoints.reconciler import run_purger, run_reconciler
from genbus.api.service_layer.unit_of_work import SqlUnitOfWork
from genbus.contracts import SERVICES
from genbus.runtime.logging import get_logger
from genbus.runtime.outbox import OutboxRelay, StagedRow
from genbus.runtime.publisher import EventPublisher
from genbus.runtime.service import connect_and_bind, make_broker

log = get_logger(__name__)

TOPOLOGY = SERVICES["api"]


def _nobody(_: str) -> None:
    return None


HandOver = Callable[[Sequence[StagedRow]], None]


class ConsumerRuntime:
    """Consumers, reconciler and purger; `relay` adds an outbox relay (a process of its own
    needs one; in the HTTP process the HTTP side's relay publishes every row: the rows this
    side commits go to `hand_over`)."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        engine: AsyncEngine,
        broker: NatsBroker,
        clock: Callable[[], datetime],
        relay: bool,
        wake: Callable[[str], None] = _nobody,
        hand_over: HandOver | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.clock = clock
        self._with_relay = relay
        # Tells other replicas (and, through `wake`, this process's streams) what changed.
        self.notifier = ChangeNotifier(wake)
        self.relay: OutboxRelay | None = None
        self._other_relay = hand_over
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: Copies completed outputs into the object store (`GENBUS_API_ARCHIVE_ENABLED`).
        self.archiver = archiver_from_env()

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine, outbox, TOPOLOGY, self._hand_over, after_commit=self.notifier.publish
        )

    async def start(self) -> None:
        js = await connect_and_bind(self.broker, TOPOLOGY)
        register_consumers(self.broker, self)
        await self.broker.start()
        await self.notifier.start(self.broker.connection, listen=False)
        self._stop = asyncio.Event()
        self._tasks = [
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
            asyncio.create_task(
                run_purger(
                    self.uow,
                    self.clock,
                    interval_s=self.settings.purge_interval_s,
                    idempotency_ttl=timedelta(hours=self.settings.idempotency_ttl_h),
                    change_log_ttl=timedelta(hours=self.settings.change_log_retention_h),
                    stop=self._stop,
                ),
                name="purger",
            ),
        ]
        if self._with_relay:
            self.relay = OutboxRelay(self.engine, outbox, EventPublisher(js, TOPOLOGY))
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self.archiver is not None:
            self.archiver.start(self.engine, self.clock)
        log.info("api consumers started", relay=self._with_relay)

    async def stop(self) -> None:
        """Stop the loops, drain the consumers, close the pool."""
        self._stop.set()
        if self.relay is not None:
            self.relay.stop()
        if self.archiver is not None:
            await self.archiver.stop(self.settings.shutdown_grace_s)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_s)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        await self.notifier.stop()
        try:
            await self.broker.stop()
        finally:
            await self.engine.dispose()
        log.info("api consumers stopped")

    def _hand_over(self, rows: Sequence[StagedRow]) -> None:
        if self.relay is not None:
            self.relay.hand_over(rows)
        elif self._other_relay is not None:
            self._other_relay(rows)


def build_consumer_runtime(
    settings: ApiSettings,
    *,
    clock: Callable[[], datetime],
    relay: bool,
    wake: Callable[[str], None] = _nobody,
    hand_over: HandOver | None = None,
) -> ConsumerRuntime:
    """Nothing connects until `start()`: the pool and the connection belong to the loop that
    starts it."""
    return ConsumerRuntime(
        settings,
        engine=settings.db_engine(settings.database_url, pool_size=settings.consumers_pool_size),
        broker=make_broker(settings.nats_url, "genbus-api-consumers", app_name="genbus-api"),
        clock=clock,
        relay=relay,
        wake=wake,
        hand_over=hand_over,
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's where it exists, as the HTTP loop's (asyncio's pure-Python selector loop and
    socket transports measured as a quarter of the api process's CPU under load)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, PyPy
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ConsumersThread:
    """A `ConsumerRuntime` on an event loop of its own, in a daemon thread."""

    def __init__(self, runtime: ConsumerRuntime) -> None:
        self.runtime = runtime
        self._loop = _new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="api-consumers", daemon=True
        )

    async def start(self) -> None:
        self._thread.start()
        await self._call(self.runtime.start())

    async def stop(self) -> None:
        try:
            await self._call(self.runtime.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, self.runtime.settings.shutdown_grace_s)
            if not self._thread.is_alive():
                self._loop.close()

    async def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        await asyncio.wrap_future(future)
