"""Fixtures: a simulator app with a hand-driven clock, reached through httpx in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from genbus.provider_sim import create_app

from .helpers import BASE_URL, FakeClock, MakeSim, Sim, make_config


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    async with AsyncExitStack() as stack:

        def factory(**overrides: Any) -> Sim:
            clock = FakeClock()
            app = create_app(make_config(**overrides), clock=clock)
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            stack.push_async_callback(client.aclose)
            return Sim(client, app.state.sim, clock, app)

        yield factory


@pytest.fixture
def sim(make_sim: MakeSim) -> Sim:
    return make_sim()
