from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from genbus.providers import (
    ADAPTER_FACTORIES,
    SIM_DEFAULT_BASE_URL,
    AdapterRegistry,
    Credentials,
    ProviderJobRef,
    SimAdapter,
    UnknownProvider,
)


async def test_sim_is_registered_and_built_once() -> None:
    registry = AdapterRegistry()
    try:
        adapter = registry.get("sim")
        assert isinstance(adapter, SimAdapter)
        assert adapter.provider_id == "sim"
        assert registry.get("sim") is adapter
        assert "sim" in registry.known_provider_ids()
        assert registry.known_provider_ids() == tuple(sorted(ADAPTER_FACTORIES))
    finally:
        await registry.aclose()
    assert adapter.closed


async def test_unknown_provider_raises() -> None:
    registry = AdapterRegistry()
    name = f"nope{uuid4().hex[:8]}"
    with pytest.raises(UnknownProvider) as info:
        registry.get(name)
    assert info.value.provider_id == name
    assert isinstance(info.value, LookupError)
    assert name in str(info.value)


async def test_base_urls_and_transport_reach_the_adapter() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(202)

    registry = AdapterRegistry(
        base_urls={"sim": "http://configured.test"}, transport=httpx.MockTransport(handler)
    )
    try:
        await registry.get("sim").cancel(
            ProviderJobRef(provider_job_id="j", credentials=Credentials(api_key="k"))
        )
    finally:
        await registry.aclose()
    assert urls == ["http://configured.test/v1/jobs/j/cancel"]


async def test_without_a_configured_base_url_the_adapters_default_is_used() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(202)

    registry = AdapterRegistry(transport=httpx.MockTransport(handler))
    try:
        await registry.get("sim").cancel(
            ProviderJobRef(provider_job_id="j", credentials=Credentials(api_key="k"))
        )
    finally:
        await registry.aclose()
    assert urls == [f"{SIM_DEFAULT_BASE_URL}/v1/jobs/j/cancel"]


async def test_custom_factories_replace_the_table() -> None:
    registry = AdapterRegistry(factories={"other": SimAdapter})
    try:
        assert registry.known_provider_ids() == ("other",)
        assert isinstance(registry.get("other"), SimAdapter)
        with pytest.raises(UnknownProvider):
            registry.get("sim")
    finally:
        await registry.aclose()
