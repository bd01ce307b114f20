from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from genbus.providers import (
    ADAPTER_FACTORIES,
    SIM_DEFAULT_BASE_URL,
    AdapterRegistry,
    Credentials,
    HttpAdapter,
    ProviderJobRef,
    SimAdapter,
    SubmitGuarantees,
    SubmitRequest,
    UnknownProvider,
    UnsupportedOperation,
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


@pytest.mark.parametrize("provider_id", sorted(ADAPTER_FACTORIES))
async def test_every_adapter_keeps_the_submit_guarantees_it_states(provider_id: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    adapter = ADAPTER_FACTORIES[provider_id](transport=httpx.MockTransport(handler))
    request = SubmitRequest(
        generation_id=uuid4(),
        operation_type="text_to_video",
        params={"prompt": "a cat"},
        idempotency_key="k",
        credentials=Credentials(api_key="k"),
    )
    try:
        guarantees = adapter.submit_guarantees
        assert isinstance(guarantees, SubmitGuarantees)
        if guarantees.findable_by_reference:
            # It must override HttpAdapter's "unsupported" default.
            assert isinstance(adapter, HttpAdapter)
            assert type(adapter).find_by_reference is not HttpAdapter.find_by_reference
        else:
            with pytest.raises(UnsupportedOperation):
                await adapter.find_by_reference(request)
            assert seen == []
    finally:
        await adapter.aclose()
