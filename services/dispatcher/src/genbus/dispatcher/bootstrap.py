"""Wires the dispatcher: the one place that knows concrete classes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from nats.js.kv import KeyValue
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import ACCOUNT_DIRECTORY, SERVICES
from genbus.dispatcher.adapters.account_directory import sync_account_directory
from genbus.dispatcher.adapters.tables import OUTBOX
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.entrypoints.admin_http import admin_routes
from genbus.dispatcher.entrypoints.consumers import register_consumers
from genbus.dispatcher.service_layer.deps import Deps
from genbus.dispatcher.service_layer.observability import DispatchGauges
from genbus.dispatcher.service_layer.reconciler import run_reconciler
from genbus.dispatcher.service_layer.scheduler import Scheduler
from genbus.dispatcher.service_layer.unit_of_work import SqlUnitOfWork
from genbus.providers import AdapterRegistry, CredentialCipher
from genbus.runtime.db import create_engine
from genbus.runtime.http_server import serve_http, service_app
from genbus.runtime.logging import get_logger
from genbus.runtime.outbox import OutboxRelay
from genbus.runtime.publisher import EventPublisher
from genbus.runtime.service import (
    connect_and_bind,
    database_readiness,
    make_broker,
    nats_readiness,
    open_kv,
)
from genbus.runtime.settings import SHUTDOWN_CLOSE_RESERVE_S
from genbus.runtime.tracing import configure_tracing

log = get_logger(__name__)


def cipher_from(settings: DispatcherSettings) -> CredentialCipher:
    return settings.credentials_cipher()


async def serve(settings: DispatcherSettings, stop: asyncio.Event) -> None:
    """Run the dispatcher until `stop`: consumers, scheduler, outbox relay, reconciler."""
    topology = SERVICES["dispatcher"]
    owner = settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"
    configure_tracing("dispatcher")
    engine = create_engine(
        settings.database_url, pool_size=10, max_overflow=20, timeouts=settings.db_timeouts()
    )
    # Shutdown fits `shutdown_grace_s`: consumers and submissions drain together for all of it
    # but the reserve left to flush the outbox and close.
    drain_s = settings.drain_s()
    broker = make_broker(
        settings.nats_url,
        f"genbus-dispatcher-{owner}",
        app_name="genbus-dispatcher",
        graceful_timeout=drain_s,
    )
    js = await connect_and_bind(broker, topology)
    kv = await open_kv(js, ACCOUNT_DIRECTORY)
    publisher = EventPublisher(js, topology)
    relay = OutboxRelay(engine, OUTBOX, publisher)
    adapters = AdapterRegistry()

    def new_uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, publisher, relay)

    deps = Deps(
        settings=settings,
        uow=new_uow,
        adapters=adapters,
        cipher=cipher_from(settings),
        owner=owner,
    )
    register_consumers(broker, deps)
    scheduler = Scheduler(deps)
    http = service_app(
        {"nats": nats_readiness(broker, topology), "database": database_readiness(engine)},
        routes=admin_routes(
            new_uow, deps.cipher, settings.admin_token.get_secret_value(), deps.wake.set
        ),
        on_scrape=(DispatchGauges(new_uow).refresh, relay.refresh_backlog),
        service="dispatcher",
    )
    background = [
        asyncio.create_task(
            serve_http(http, settings.health_host, settings.health_port, stop), name="http"
        ),
        asyncio.create_task(relay.run(), name="outbox-relay"),
        asyncio.create_task(run_reconciler(deps, stop), name="reconciler"),
        asyncio.create_task(_sync_directory(engine, kv, settings, stop), name="account-directory"),
    ]
    await broker.start()
    log.info("dispatcher started", owner=owner)
    try:
        await scheduler.run(stop)
    finally:
        log.info("dispatcher stopping", inflight=scheduler.inflight, drain_s=drain_s)
        # No new claims (the loop has ended); events stop coming in while in-hand submissions
        # finish or are handed on, then the outbox is flushed.
        await asyncio.gather(broker.stop(), scheduler.drain(drain_s))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay.relay_once(), SHUTDOWN_CLOSE_RESERVE_S / 2)
        relay.stop()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await adapters.aclose()
        await engine.dispose()
        log.info("dispatcher stopped")


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
