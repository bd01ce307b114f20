"""Wires the webhooks service: the one place that knows concrete classes."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Mount

from genbus.contracts import SERVICES
from genbus.runtime.http_server import (
    ReadinessCheck,
    failing_checks,
    serve_http,
    service_app,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.service import (
    connect_and_bind,
    database_readiness,
    make_broker,
    nats_readiness,
    run_until_stopped,
)
from genbus.runtime.tracing import configure_tracing
from genbus.webhooks.adapters.identity import ApiIdentity
from genbus.webhooks.adapters.repository import SqlStore
from genbus.webhooks.adapters.secrets import FernetSecretCipher
from genbus.webhooks.adapters.sender import HttpSender
from genbus.webhooks.config import WebhooksSettings
from genbus.webhooks.entrypoints.consumers import register_consumers
from genbus.webhooks.entrypoints.http import HttpDeps, management_app
from genbus.webhooks.service_layer.endpoints import Endpoints
from genbus.webhooks.service_layer.metrics import queue_depth_refresher
from genbus.webhooks.service_layer.retention import run_purge
from genbus.webhooks.service_layer.worker import DeliveryWorker

log = get_logger(__name__)
TOPOLOGY = SERVICES["webhooks"]


@dataclass
class WebhooksRuntime:
    """Everything the running service holds: `start()` binds its consumers and starts its
    loops (named in `_loops`), `stop()` drains and closes, `readiness()` checks dependencies."""

    settings: WebhooksSettings
    engine: AsyncEngine
    broker: NatsBroker
    store: SqlStore
    sender: HttpSender
    identity: ApiIdentity
    worker: DeliveryWorker
    endpoints: Endpoints
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def _checks(self) -> dict[str, ReadinessCheck]:
        return {
            "nats": nats_readiness(self.broker, TOPOLOGY),
            "database": database_readiness(self.engine),
        }

    async def start(self) -> None:
        await connect_and_bind(self.broker, TOPOLOGY)
        register_consumers(self.broker, self.store, self.worker.wake)
        self._stop.clear()
        self._tasks = [asyncio.create_task(loop, name=name) for name, loop in self._loops().items()]
        await self.broker.start()
        log.info("webhooks started", owner=self.worker.owner)

    def _loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        """Every background loop of the service, by name."""
        settings, stop = self.settings, self._stop
        api = management_app(HttpDeps(self.endpoints, self.store, self.identity))
        http = service_app(
            self._checks(),
            routes=[Mount("/", app=api)],
            on_scrape=(queue_depth_refresher(self.store),),
            service="webhooks",
        )
        return {
            "http": serve_http(http, settings.health_host, settings.health_port, stop),
            "delivery-worker": self.worker.run(stop),
            "purge": run_purge(
                self.store,
                settings.retention_h,
                settings.purge_interval_s,
                settings.purge_batch,
                stop,
            ),
        }

    async def stop(self) -> None:
        log.info("webhooks stopping")
        await self.broker.stop()
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.sender.aclose()
        await self.identity.aclose()
        await self.engine.dispose()
        log.info("webhooks stopped")

    async def readiness(self) -> dict[str, bool]:
        """Each dependency's check (as `/readyz` reports them)."""
        checks = self._checks()
        failures = await failing_checks(checks)
        return {name: name not in failures for name in checks}


async def serve(settings: WebhooksSettings, stop: asyncio.Event) -> None:
    """Run the webhooks service until `stop`."""
    await run_until_stopped(bootstrap(settings), stop)


def bootstrap(settings: WebhooksSettings) -> WebhooksRuntime:
    keys = settings.secret_keys.get_secret_value()
    if not keys:
        raise SystemExit(
            "GENBUS_WEBHOOKS_SECRET_KEYS (or GENBUS_CREDENTIALS_KEYS) is required "
            "(comma-separated Fernet keys)"
        )
    configure_tracing("webhooks")
    owner = settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"
    engine = settings.db_engine(settings.database_url)
    store = SqlStore(engine)
    cipher = FernetSecretCipher.from_key_list(keys)
    policy = settings.address_policy()
    sender = HttpSender(
        policy, timeout_s=settings.attempt_timeout_s, max_response_bytes=settings.max_response_bytes
    )
    worker = DeliveryWorker(
        store=store,
        sender=sender,
        cipher=cipher,
        owner=owner,
        retry=settings.retry_policy(),
        disable=settings.disable_policy(),
        lease_s=settings.lease_s,
        batch_size=settings.batch_size,
        poll_interval_s=settings.poll_interval_s,
    )
    broker = make_broker(
        settings.nats_url,
        f"genbus-webhooks-{owner}",
        app_name="genbus-webhooks",
        graceful_timeout=settings.drain_s(),
    )
    identity = ApiIdentity(
        settings.api_url, cache_s=settings.auth_cache_s, timeout_s=settings.auth_timeout_s
    )
    return WebhooksRuntime(
        settings=settings,
        engine=engine,
        broker=broker,
        store=store,
        sender=sender,
        identity=identity,
        worker=worker,
        endpoints=Endpoints(store, cipher, policy),
    )
