"""Registering and managing a caller's endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from genbus.runtime.addresses import Resolver, resolve
from genbus.webhooks.adapters.sender import checked_address
from genbus.webhooks.domain.addresses import AddressPolicy
from genbus.webhooks.domain.model import ALL_KINDS, Endpoint, EventKind, new_signing_secret
from genbus.webhooks.service_layer.ports import EndpointChanges, SecretCipher, Store


class EndpointNotFound(Exception):
    pass


@dataclass(frozen=True)
class Registered:
    endpoint: Endpoint
    #: The signing secret, returned this once only.
    secret: str


@dataclass
class Endpoints:
    store: Store
    cipher: SecretCipher
    policy: AddressPolicy
    resolver: Resolver = resolve

    async def register(
        self,
        user_id: str,
        url: str,
        event_kinds: Sequence[EventKind] = ALL_KINDS,
        description: str = "",
    ) -> Registered:
        """A new endpoint with a fresh secret; `UrlRefused` for a URL deliveries may not reach
        (checked after resolving its host)."""
        await checked_address(url, self.policy, self.resolver)
        now = datetime.now(UTC)
        endpoint = Endpoint(
            id=uuid4(),
            user_id=user_id,
            url=url,
            description=description,
            event_kinds=_unique(event_kinds),
            enabled=True,
            disabled_reason=None,
            disabled_at=None,
            consecutive_failures=0,
            failing_since=None,
            created_at=now,
            updated_at=now,
        )
        secret = new_signing_secret()
        await self.store.add_endpoint(endpoint, self.cipher.encrypt(secret))
        return Registered(endpoint, secret)

    async def get(self, user_id: str, endpoint_id: UUID) -> Endpoint:
        endpoint = await self.store.get_endpoint(user_id, endpoint_id)
        if endpoint is None:
            raise EndpointNotFound(f"endpoint {endpoint_id} not found")
        return endpoint

    async def list(self, user_id: str) -> list[Endpoint]:
        return await self.store.list_endpoints(user_id)

    async def change(self, user_id: str, endpoint_id: UUID, changes: EndpointChanges) -> Endpoint:
        if changes.url is not None:
            await checked_address(changes.url, self.policy, self.resolver)
        if changes.event_kinds is not None:
            changes = EndpointChanges(
                url=changes.url,
                description=changes.description,
                event_kinds=_unique(changes.event_kinds),
                enabled=changes.enabled,
            )
        endpoint = await self.store.update_endpoint(
            user_id, endpoint_id, changes, datetime.now(UTC)
        )
        if endpoint is None:
            raise EndpointNotFound(f"endpoint {endpoint_id} not found")
        return endpoint

    async def delete(self, user_id: str, endpoint_id: UUID) -> None:
        if not await self.store.delete_endpoint(user_id, endpoint_id):
            raise EndpointNotFound(f"endpoint {endpoint_id} not found")


def _unique(kinds: Sequence[EventKind]) -> tuple[EventKind, ...]:
    return tuple(k for k in ALL_KINDS if k in set(kinds))
