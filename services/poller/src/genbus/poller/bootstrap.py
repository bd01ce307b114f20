"""Wires the poller: broker, account directory, adapters. It owns no tables.

`bootstrap(settings)` builds a `PollerRuntime` (nothing connects yet); `start()` connects and
subscribes and starts the background loops (named in `_loops`), `stop()` lets polls in hand
finish and closes, `readiness()` says whether it can work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from faststream.nats import NatsBroker

from genbus.contracts import ACCOUNT_DIRECTORY, SERVICES
from genbus.poller.adapters.account_directory import AccountDirectory
from genbus.poller.config import PollerSettings
from genbus.poller.dependencies import PollerDeps
from genbus.poller.entrypoints.consumers import register_consumers
from genbus.providers import AdapterRegistry, CredentialCipher
from genbus.runtime.http_server import (
    ReadinessCheck,
    failing_checks,
    serve_http,
    service_app,
)
from genbus.runtime.logging import get_logger
from genbus.runtime.publisher import EventPublisher
from genbus.runtime.service import (
    connect_and_bind,
    make_broker,
    nats_readiness,
    open_kv,
    run_until_stopped,
)
from genbus.runtime.tracing import configure_tracing

log = get_logger(__name__)
TOPOLOGY = SERVICES["poller"]


class PollerRuntime:
    """The running poller: its consumer of submitted jobs and its probes-and-metrics listener."""

    def __init__(
        self,
        settings: PollerSettings,
        *,
        broker: NatsBroker,
        adapters: AdapterRegistry,
        cipher: CredentialCipher,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.adapters = adapters
        self.cipher = cipher
        self.deps: PollerDeps | None = None
        self._checks: dict[str, ReadinessCheck] = {"nats": nats_readiness(broker, TOPOLOGY)}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect, provision, subscribe, and start the background loops."""
        settings = self.settings
        js = await connect_and_bind(self.broker, TOPOLOGY)
        kv = await open_kv(js, ACCOUNT_DIRECTORY)
        self.deps = PollerDeps(
            settings=settings,
            adapters=self.adapters,
            directory=AccountDirectory(kv, self.cipher, settings.directory_ttl_s),
            publisher=EventPublisher(js, TOPOLOGY),
        )
        register_consumers(
            self.broker,
            self.deps,
            batch_size=settings.batch_size,
            max_polls_per_provider=settings.max_polls_per_provider,
            providers=len(self.adapters.known_provider_ids()),
        )
        self._stop.clear()
        self._tasks = [asyncio.create_task(loop, name=name) for name, loop in self._loops().items()]
        await self.broker.start()
        log.info("poller started")

    def _loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        """Every background loop of the poller, by name."""
        probes = service_app(self._checks, service="poller")
        settings = self.settings
        return {"http": serve_http(probes, settings.health_host, settings.health_port, self._stop)}

    async def stop(self) -> None:
        """Polls in hand finish (each status call is bounded by 80 % of the ack wait); unfinished
        jobs' messages are redelivered to another replica."""
        log.info("poller stopping")
        await self.broker.stop()
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.adapters.aclose()
        log.info("poller stopped")

    async def readiness(self) -> dict[str, bool]:
        """Each dependency's check (as `/readyz` reports them)."""
        failures = await failing_checks(self._checks)
        return {name: name not in failures for name in self._checks}


def bootstrap(settings: PollerSettings) -> PollerRuntime:
    """Build the runtime; nothing connects until `start()`."""
    keys = settings.credentials_keys.get_secret_value()
    if not keys:
        raise SystemExit("GENBUS_CREDENTIALS_KEYS is required (comma-separated Fernet keys)")
    configure_tracing("poller")
    return PollerRuntime(
        settings,
        broker=make_broker(settings.nats_url, "genbus-poller", graceful_timeout=settings.drain_s()),
        adapters=AdapterRegistry(),
        cipher=CredentialCipher.from_key_list(keys),
    )


async def serve(settings: PollerSettings, stop: asyncio.Event) -> None:
    """Run the poller until `stop`."""
    await run_until_stopped(bootstrap(settings), stop)
