"""Fixtures: the real api app (lifespan run: broker, consumers, outbox relay, reconciler)
against the per-test Postgres database and NATS server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import nats
import pytest
from api_harness import Api

from genbus.api.__main__ import MIGRATIONS
from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.runtime.migrations import upgrade_to_head


@pytest.fixture
def api_settings(database_url: str, nats_url: str) -> ApiSettings:
    return ApiSettings(
        database_url=database_url,
        nats_url=nats_url,
        reconcile_interval_s=0.1,
        deadline_grace_s=0,
    )


@pytest.fixture
async def api(api_settings: ApiSettings) -> AsyncIterator[Api]:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, api_settings.database_url, "api")
    app = create_app(api_settings)
    async with app.router.lifespan_context(app):
        nc = await nats.connect(api_settings.nats_url)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
                yield Api(app, c, api_settings.database_url, nc, nc.jetstream())
        finally:
            await nc.drain()
