"""The provider catalog the api validates requests against: the providers lib's table."""

from __future__ import annotations

from genbus.providers.capabilities import known_provider_ids, provider_supports


class CapabilitiesCatalog:
    """`ProviderCatalog` backed by `genbus.providers.capabilities`."""

    def is_known(self, provider_id: str) -> bool:
        return provider_id in known_provider_ids()

    def supports(self, provider_id: str, operation_type: str) -> bool:
        return provider_supports(provider_id, operation_type)
