"""Wires the poller: broker, account directory, adapters. It owns no tables."""

from __future__ import annotations

import asyncio

from genbus.contracts import ACCOUNT_DIRECTORY, SERVICES
from genbus.poller.adapters.account_directory import AccountDirectory
from genbus.poller.config import PollerSettings
from genbus.poller.entrypoints.consumers import register_consumers
from genbus.poller.service_layer.deps import PollerDeps
from genbus.providers import AdapterRegistry, CredentialCipher
from genbus.runtime.http_server import serve_http, service_app
from genbus.runtime.logging import get_logger
from genbus.runtime.publisher import EventPublisher
from genbus.runtime.service import connect_and_bind, make_broker, nats_readiness, open_kv
from genbus.runtime.tracing import configure_tracing

log = get_logger(__name__)


async def serve(settings: PollerSettings, stop: asyncio.Event) -> None:
    keys = settings.credentials_keys.get_secret_value()
    if not keys:
        raise SystemExit("GENBUS_CREDENTIALS_KEYS is required (comma-separated Fernet keys)")
    topology = SERVICES["poller"]
    configure_tracing("poller")
    broker = make_broker(settings.nats_url, "genbus-poller", graceful_timeout=settings.drain_s())
    js = await connect_and_bind(broker, topology)
    kv = await open_kv(js, ACCOUNT_DIRECTORY)
    adapters = AdapterRegistry()
    deps = PollerDeps(
        settings=settings,
        adapters=adapters,
        directory=AccountDirectory(
            kv, CredentialCipher.from_key_list(keys), settings.directory_ttl_s
        ),
        publisher=EventPublisher(js, topology),
    )
    register_consumers(
        broker,
        deps,
        batch_size=settings.batch_size,
        max_polls_per_provider=settings.max_polls_per_provider,
        providers=len(adapters.known_provider_ids()),
    )
    http = service_app({"nats": nats_readiness(broker, topology)}, service="poller")
    await broker.start()
    log.info("poller started")
    try:
        await serve_http(http, settings.health_host, settings.health_port, stop)
    finally:
        log.info("poller stopping")
        # Polls in hand finish (each status call is bounded by 80 % of the ack wait); unfinished
        # jobs' messages are redelivered to another replica.
        await broker.stop()
        await adapters.aclose()
        log.info("poller stopped")
