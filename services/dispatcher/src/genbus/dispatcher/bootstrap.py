"""Wires the dispatcher: the one place that knows concrete classes.

`bootstrap(settings)` builds a `DispatcherRuntime` (nothing connects yet); `start()` connects,
provisions and starts the consumers and the background loops (all named in `_loops`), `stop()`
drains within the shutdown grace and closes, `readiness()` says whether it can work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import nats
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import ACCOUNT_DIRECTORY, SERVICES
from genbus.dispatcher.adapters.account_directory import sync_account_directory
from genbus.dispatcher.adapters.console_reads import ConsoleReads
from genbus.dispatcher.adapters.tables import OUTBOX
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.entrypoints.admin_app import admin_app
from genbus.dispatcher.entrypoints.admin_http import admin_routes
from genbus.dispatcher.entrypoints.console import console_routes
from genbus.dispatcher.entrypoints.consumers import register_consumers
from genbus.dispatcher.service_layer.balances import run_balance_refresher
from genbus.dispatcher.service_layer.dead_letters import DeadLetters
from genbus.dispatcher.service_layer.observability import DispatchGauges
from genbus.dispatcher.service_layer.reconciler import run_reconciler
from genbus.dispatcher.service_layer.scheduler import Scheduler
from genbus.dispatcher.service_layer.unit_of_work import SqlUnitOfWork
from genbus.providers import AdapterRegistry
from genbus.runtime.http_server import (
    ReadinessCheck,
    failing_checks,
    serve_http,
    service_app,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.nats_client import NatsAccess
from genbus.runtime.outbox import OutboxRelay
from genbus.runtime.publisher import EventPublisher
from genbus.runtime.service import (
    connect_and_bind,
    database_readiness,
    make_broker,
    nats_readiness,
    open_kv,
    run_until_stopped,
)
from genbus.runtime.settings import SHUTDOWN_CLOSE_RESERVE_S
from genbus.runtime.tracing import configure_tracing

log = get_logger(__name__)
TOPOLOGY = SERVICES["dispatcher"]


class DispatcherRuntime:
    """The running dispatcher: consumers, scheduler, outbox relay, reconciler, HTTP listeners."""

    def __init__(
        self,
        settings: DispatcherSettings,
        *,
        engine: AsyncEngine,
        broker: NatsBroker,
        adapters: AdapterRegistry,
        owner: str,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.adapters = adapters
        self.owner = owner
        self.publisher: EventPublisher | None = None
        self.relay: OutboxRelay | None = None
        self.deps: Deps | None = None
        self.scheduler: Scheduler | None = None
        self._checks: dict[str, ReadinessCheck] = {
            "nats": nats_readiness(broker, TOPOLOGY),
            "database": database_readiness(engine),
        }
        self._operator: NatsClient | None = None
        self._stop = asyncio.Event()
        self._scheduling: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def uow(self) -> SqlUnitOfWork:
        """A fresh unit of work (one transaction); it stages events once the relay exists."""
        return SqlUnitOfWork(self.engine, self.publisher, self.relay)

    def _statement_uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.publisher, self.relay, single_statement=True)

    async def start(self) -> None:
        """Connect, provision, subscribe, and start the scheduler and the background loops."""
        settings = self.settings
        js = await connect_and_bind(self.broker, TOPOLOGY)
        kv = await open_kv(js, ACCOUNT_DIRECTORY)
        self.publisher = EventPublisher(js, TOPOLOGY)
        self.relay = OutboxRelay(self.engine, OUTBOX, self.publisher)
        self.deps = Deps(
            settings=settings,
            uow=self.uow,
            statement_uow=self._statement_uow,
            adapters=self.adapters,
            cipher=settings.credentials_cipher(),
            owner=self.owner,
        )
        register_consumers(self.broker, self.deps)
        self.scheduler = Scheduler(self.deps)
        self._stop.clear()
        operator_js = await self._operator_jetstream(js)
        self._tasks = [
            asyncio.create_task(loop, name=name)
            for name, loop in self._loops(operator_js, kv).items()
        ]
        await self.broker.start()
        self._scheduling = asyncio.create_task(self.scheduler.run(self._stop), name="scheduler")
        log.info("dispatcher started", owner=self.owner)

    async def _operator_jetstream(self, own: JetStreamContext) -> JetStreamContext:
        """The admin listener's JetStream: as the `operator` NATS user when one is configured
        (its own connection), else the dispatcher's."""
        settings = self.settings
        if not settings.operator_nats_user:
            return own
        password = settings.operator_nats_password
        access = replace(
            NatsAccess.from_settings(settings),
            user=settings.operator_nats_user,
            password=password.get_secret_value() if password is not None else None,
        )
        self._operator = await nats.connect(
            list(access.servers),
            name=f"genbus-dispatcher-{self.owner}-operator",
            max_reconnect_attempts=-1,
            **access.connect_options(),
        )
        return self._operator.jetstream()

    def _loops(self, js: JetStreamContext, kv: KeyValue) -> dict[str, Coroutine[Any, Any, None]]:
        """Every background loop of the dispatcher but the scheduler, by name."""
        assert self.deps is not None
        assert self.relay is not None
        settings = self.settings
        token = settings.admin_token.get_secret_value()
        probes = service_app(
            self._checks,
            on_scrape=(DispatchGauges(self.uow).refresh, self.relay.refresh_backlog),
            service="dispatcher",
        )
        dead_letters = DeadLetters(lambda: js, self.uow)
        admin = admin_app(
            admin_routes(
                self.uow,
                self.deps.cipher,
                token,
                self.deps.wake.set,
                policy=settings.base_url_policy(),
                name=settings.admin_name,
                dead_letters=dead_letters,
            ),
            console=console_routes(
                token=token,
                name=settings.admin_name,
                development=settings.development,
                uow=self.uow,
                reads=ConsoleReads(self.engine),
                dead_letters=dead_letters,
                js=lambda: js,
                cipher=self.deps.cipher,
                policy=settings.base_url_policy(),
                on_change=self.deps.wake.set,
                stop=self._stop,
            ),
        )
        admin_port = settings.admin_port if token else 0
        return {
            "http": serve_http(probes, settings.health_host, settings.health_port, self._stop),
            "admin-http": serve_http(admin, settings.admin_host, admin_port, self._stop),
            "outbox-relay": self.relay.run(),
            "reconciler": run_reconciler(self.deps, self._stop),
            "account-directory": _sync_directory(self.engine, kv, settings, self._stop),
            "balances": run_balance_refresher(self.deps, self._stop),
        }

    async def wait(self, stop: asyncio.Event) -> None:
        """Until `stop` is set, or the scheduler ends on its own (an error: it is raised)."""
        assert self._scheduling is not None, "start() first"
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({stopping, self._scheduling}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if self._scheduling.done():
            self._scheduling.result()

    async def stop(self) -> None:
        """Drain within the shutdown grace: no new claims; events stop coming in while in-hand
        submissions finish or are handed on; then the outbox is flushed and all is closed."""
        drain_s = self.settings.drain_s()
        inflight = self.scheduler.inflight if self.scheduler else 0
        log.info("dispatcher stopping", inflight=inflight, drain_s=drain_s)
        self._stop.set()
        if self._scheduling is not None:
            with contextlib.suppress(Exception):
                await self._scheduling
        drains = [self.broker.stop()]
        if self.scheduler is not None:
            drains.append(self.scheduler.drain(drain_s))
        await asyncio.gather(*drains)
        if self.relay is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.relay.flush(), SHUTDOWN_CLOSE_RESERVE_S / 2)
            self.relay.stop()
        # Every loop ends on `_stop` (the relay on `stop()`): let the HTTP servers finish their
        # own shutdown rather than cancel them midway; cancel only what outlives the reserve.
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=SHUTDOWN_CLOSE_RESERVE_S / 2)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._operator is not None:
            with contextlib.suppress(Exception):
                await self._operator.close()
        await self.adapters.aclose()
        await self.engine.dispose()
        log.info("dispatcher stopped")

    async def readiness(self) -> dict[str, bool]:
        """Each dependency's check (as `/readyz` reports them)."""
        failures = await failing_checks(self._checks)
        return {name: name not in failures for name in self._checks}


def bootstrap(settings: DispatcherSettings) -> DispatcherRuntime:
    """Build the runtime; nothing connects until `start()`."""
    owner = settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"
    configure_tracing("dispatcher")
    return DispatcherRuntime(
        settings,
        engine=settings.db_engine(settings.database_url),
        # Shutdown fits `shutdown_grace_s`: consumers and submissions drain together for all
        # of it but the reserve left to flush the outbox and close.
        broker=make_broker(
            settings.nats_url,
            f"genbus-dispatcher-{owner}",
            app_name="genbus-dispatcher",
            graceful_timeout=settings.drain_s(),
        ),
        adapters=AdapterRegistry(),
        owner=owner,
    )


async def serve(settings: DispatcherSettings, stop: asyncio.Event) -> None:
    """Run the dispatcher until `stop`."""
    runtime = bootstrap(settings)
    await run_until_stopped(runtime, stop, wait=runtime.wait)


async def _sync_directory(
    engine: AsyncEngine, kv: KeyValue, settings: DispatcherSettings, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await sync_account_directory(engine, kv, settings.credentials_cipher())
        except Exception as exc:
            log.warning("account directory sync failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.account_directory_sync_s)
