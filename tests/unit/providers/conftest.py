"""Fixtures for the provider adapter tests: random credentials and mock-transport adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import httpx
import pytest

from genbus.providers import Credentials, SimAdapter

MOCK_BASE_URL = "http://sim.test"

Handler = Callable[[httpx.Request], httpx.Response]
AdapterMaker = Callable[[Handler], SimAdapter]


@pytest.fixture
def api_key() -> str:
    return f"sk-secret-{uuid4().hex}"


@pytest.fixture
def credentials(api_key: str) -> Credentials:
    return Credentials(api_key=api_key)


@pytest.fixture
async def make_adapter() -> AsyncIterator[AdapterMaker]:
    """A SimAdapter whose HTTP traffic goes to `handler` instead of the network."""
    made: list[SimAdapter] = []

    def make(handler: Handler) -> SimAdapter:
        adapter = SimAdapter(base_url=MOCK_BASE_URL, transport=httpx.MockTransport(handler))
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()
