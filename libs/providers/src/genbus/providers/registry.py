"""Which adapter serves which provider id: the one table to extend when adding a provider."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

import httpx

from genbus.providers.pixverse import PixverseAdapter
from genbus.providers.protocol import ProviderAdapter
from genbus.providers.replicate import ReplicateAdapter
from genbus.providers.sim import SimAdapter


class AdapterFactory(Protocol):
    """Builds an adapter; every adapter class has this constructor signature."""

    def __call__(
        self,
        *,
        base_url: str | None = ...,
        timeout: httpx.Timeout | None = ...,
        transport: httpx.AsyncBaseTransport | None = ...,
    ) -> ProviderAdapter: ...


#: provider id → adapter class. Adding a provider is one line here.
ADAPTER_FACTORIES: Mapping[str, AdapterFactory] = MappingProxyType(
    {
        "sim": SimAdapter,
        "pixverse": PixverseAdapter,
        "replicate": ReplicateAdapter,
    }
)


class UnknownProvider(LookupError):
    """No adapter is registered for this provider id."""

    def __init__(self, provider_id: str) -> None:
        super().__init__(f"no adapter for provider {provider_id!r}")
        self.provider_id = provider_id


class AdapterRegistry:
    """Builds each provider's adapter on first use and keeps it (one HTTP pool per provider)."""

    def __init__(
        self,
        *,
        base_urls: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        factories: Mapping[str, AdapterFactory] = ADAPTER_FACTORIES,
    ) -> None:
        self._base_urls = dict(base_urls or {})
        self._timeout = timeout
        self._transport = transport
        self._factories = dict(factories)
        self._adapters: dict[str, ProviderAdapter] = {}

    def known_provider_ids(self) -> tuple[str, ...]:
        """Every provider id this registry can serve, sorted."""
        return tuple(sorted(self._factories))

    def get(self, provider_id: str) -> ProviderAdapter:
        """The adapter for `provider_id`; UnknownProvider if there is none."""
        adapter = self._adapters.get(provider_id)
        if adapter is not None:
            return adapter
        factory = self._factories.get(provider_id)
        if factory is None:
            raise UnknownProvider(provider_id)
        if provider_id in self._base_urls:
            adapter = factory(
                base_url=self._base_urls[provider_id],
                timeout=self._timeout,
                transport=self._transport,
            )
        else:
            adapter = factory(timeout=self._timeout, transport=self._transport)
        self._adapters[provider_id] = adapter
        return adapter

    async def aclose(self) -> None:
        """Close every adapter built so far."""
        adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            await adapter.aclose()
