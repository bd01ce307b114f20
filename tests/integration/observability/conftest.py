"""One process running the api, dispatcher and poller on real NATS, Postgres and the sim,
with every span kept in memory: what one generation's trace looks like end to end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genbus.api.__main__ import MIGRATIONS as API_MIGRATIONS
from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import GenbusSystem, SystemConfig
from genbus.dispatcher import bootstrap as dispatcher
from genbus.dispatcher.config import DispatcherSettings
from genbus.poller import bootstrap as poller
from genbus.poller.config import PollerSettings
from genbus.runtime.instrumentation import instrument_fastapi
from genbus.runtime.migrations import upgrade_to_head
from genbus.runtime.tracing import configure_tracing

pytestmark = pytest.mark.integration

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    """Every span this test process records (tracing switched on once, in memory)."""
    configure_tracing("tests", exporter=_EXPORTER)
    return _EXPORTER


@dataclass
class OneProcess:
    api: httpx.AsyncClient
    system: GenbusSystem


@pytest.fixture
def sim_and_accounts(
    tmp_path: Path, nats_url: str, database_url: str, postgres: PostgresServer
) -> Iterator[GenbusSystem]:
    """The sim provider as a process, the dispatcher schema migrated and its accounts seeded."""
    system = GenbusSystem(
        SystemConfig(
            base_dir=tmp_path / "system",
            nats_url=nats_url,
            database_url=database_url,
            replicas={"api": 0, "dispatcher": 0, "poller": 0},
            sim_env={"SIM_DURATION_S": "0.2", "SIM_DURATION_JITTER_S": "0"},
            log_to_files=True,
            log_format="json",
        )
    )
    system.start()
    try:
        yield system
    finally:
        system.stop()


@pytest.fixture
async def one_process(
    spans: InMemorySpanExporter, sim_and_accounts: GenbusSystem
) -> AsyncIterator[OneProcess]:
    """api (in-process ASGI), dispatcher and poller (their `serve`) in this event loop."""
    config = sim_and_accounts.config
    # By its environment name: the setting has aliases, so its field name is not accepted.
    keys: dict[str, Any] = {"GENBUS_CREDENTIALS_KEYS": config.credentials_key}
    await asyncio.to_thread(upgrade_to_head, API_MIGRATIONS, config.database_url, "api")
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(
            dispatcher.serve(
                DispatcherSettings(
                    database_url=config.database_url,
                    nats_url=config.nats_url,
                    health_port=0,
                    idle_tick_s=0.1,
                    **keys,
                ),
                stop,
            )
        ),
        asyncio.create_task(
            poller.serve(
                PollerSettings(nats_url=config.nats_url, health_port=0, **keys),
                stop,
            )
        ),
    ]
    app = create_app(
        ApiSettings(
            database_url=config.database_url,
            nats_url=config.nats_url,
            allow_anonymous=True,
            rate_limit_per_s=100_000,
            rate_limit_burst=100_000,
        )
    )
    instrument_fastapi(app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api.test", timeout=10
            ) as client,
        ):
            yield OneProcess(api=client, system=sim_and_accounts)
    finally:
        stop.set()
        done, pending = await asyncio.wait(workers, timeout=30)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
