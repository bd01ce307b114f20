"""Fixtures: the real api app (lifespan run: broker, consumers, outbox relay, reconciler)
against the per-test Postgres database and NATS server, called with a real API key.

`api` calls the app in-process; `live_api` also serves it over real HTTP (uvicorn, same event
loop), for what an in-process transport cannot do: streaming responses (SSE).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from api_harness import USER, Api, LiveApi, served

from genbus.api.__main__ import MIGRATIONS
from genbus.api.bootstrap import ApiRuntime
from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.api.service_layer.api_keys import issue_api_key
from genbus.runtime.migrations import upgrade_to_head
from genbus.runtime.nats_client import connect_nats


@pytest.fixture
def api_settings(database_url: str, nats_url: str) -> ApiSettings:
    return ApiSettings(
        database_url=database_url,
        nats_url=nats_url,
        reconcile_interval_s=0.1,
        deadline_grace_s=0,
        # Tests fire requests far faster than any client should; the limit has its own test.
        rate_limit_per_s=100_000,
        rate_limit_burst=100_000,
        sse_catch_up_s=2.0,
        sse_ping_s=1.0,
    )


@pytest.fixture
async def api(api_settings: ApiSettings) -> AsyncIterator[Api]:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, api_settings.database_url, "api")
    app = create_app(api_settings)
    runtime: ApiRuntime = app.state.runtime
    async with app.router.lifespan_context(app):
        nc = await connect_nats(api_settings.nats_url)
        issued = await issue_api_key(
            runtime.uow(), user_id=USER, name="tests", now=datetime.now(UTC)
        )
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://api.test",
                headers={"Authorization": f"Bearer {issued.secret}"},
            ) as client:
                harness = Api(
                    app, client, api_settings.database_url, nc, nc.jetstream(), key=issued.secret
                )
                try:
                    yield harness
                finally:
                    await harness.close_clients()
        finally:
            await nc.drain()


@pytest.fixture
async def live_api(api: Api) -> AsyncIterator[LiveApi]:
    """`api`, also served over HTTP on a free port (its lifespan is run by `api`)."""
    async with served(api.app) as base_url:
        yield LiveApi(api, base_url)
