"""`genbus-api consumers`: the api's event consumers as a process of their own (no HTTP API;
`/healthz`, `/readyz` and `/metrics` on `GENBUS_HEALTH_PORT`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from genbus.api.config import ApiSettings
from genbus.api.consumers_runtime import TOPOLOGY, build_consumer_runtime
from genbus.runtime.http_server import serve_http, service_app
from genbus.runtime.service import database_readiness, nats_readiness


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run_consumers(settings: ApiSettings, stop: asyncio.Event) -> None:
    """Consume, reconcile, purge and relay until `stop` is set."""
    runtime = build_consumer_runtime(settings, clock=_utc_now, relay=True)
    await runtime.start()
    probes = service_app(
        {
            "nats": nats_readiness(runtime.broker, TOPOLOGY),
            "database": database_readiness(runtime.engine),
        },
        service="api-consumers",
    )
    try:
        await serve_http(probes, settings.health_host, settings.health_port, stop)
    finally:
        await runtime.stop()
