"""What each provider with an adapter can do, read off the adapters themselves."""

from __future__ import annotations

from collections.abc import Mapping

from genbus.providers.registry import ADAPTER_FACTORIES


def _operations_of(factory: object) -> frozenset[str]:
    operations: frozenset[str] = getattr(factory, "operations", frozenset())
    return frozenset(operations)


#: provider id → operation types its adapter can submit.
PROVIDER_OPERATIONS: Mapping[str, frozenset[str]] = {
    provider_id: _operations_of(factory) for provider_id, factory in ADAPTER_FACTORIES.items()
}


def known_provider_ids() -> frozenset[str]:
    """Every provider id genbus has an adapter for."""
    return frozenset(PROVIDER_OPERATIONS)


def provider_supports(provider_id: str, operation_type: str) -> bool:
    """Whether `provider_id` has an adapter and that adapter can run `operation_type`."""
    return operation_type in PROVIDER_OPERATIONS.get(provider_id, frozenset())
