"""Fixtures: a migrated dispatcher schema in the per-test database, a sim server, and the
dispatcher's scheduler wired to both (in this process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from dispatcher_harness import Dispatcher, SimServer, serve_sim

from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.entrypoints.cli import MIGRATIONS
from genbus.runtime.db import create_engine
from genbus.runtime.migrations import upgrade_to_head

#: Keys the sim knows; tests give one to each account. "sim-key-unknown" is not among them.
SIM_KEYS = ["sim-key-1", "sim-key-2", "sim-key-3", "sim-key-4"]


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with serve_sim(SIM_KEYS) as server:
        yield server


@pytest.fixture
def settings(database_url: str) -> DispatcherSettings:
    return DispatcherSettings(
        database_url=database_url,
        max_submit_tries=3,
        submit_backoff_base_s=0.01,
        submit_backoff_max_s=0.05,
        rate_limit_cooldown_s=1.0,
        concurrency_cooldown_s=1.0,
        idle_tick_s=0.05,
        lease_s=30.0,
    )


@pytest.fixture
async def dispatcher(settings: DispatcherSettings, sim: SimServer) -> AsyncIterator[Dispatcher]:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, settings.database_url, "dispatcher")
    engine = create_engine(
        settings.database_url, pool_size=5, max_overflow=5, timeouts=settings.db_timeouts()
    )
    try:
        yield Dispatcher(engine, sim, settings)
    finally:
        await engine.dispose()
