"""What the service layer needs of its collaborators (the SQL store, the HTTP sender, the
secret cipher); the unit tests give it fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from genbus.webhooks.domain.model import (
    Attempt,
    Delivery,
    DeliveryStatus,
    DueDelivery,
    Endpoint,
    EventKind,
    SendResult,
)
from genbus.webhooks.domain.retry import DisablePolicy


@dataclass(frozen=True, kw_only=True)
class NewDelivery:
    id: UUID
    endpoint_id: UUID
    source_event_id: UUID
    webhook_id: str
    event_type: str
    generation_id: UUID
    payload: dict[str, Any]
    next_attempt_at: datetime


@dataclass(frozen=True, kw_only=True)
class AttemptRecord:
    """One finished attempt and what follows for its delivery."""

    delivery_id: UUID
    endpoint_id: UUID
    owner: str
    attempted_at: datetime
    result: SendResult
    status: DeliveryStatus
    tries: int
    next_attempt_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class EndpointChanges:
    url: str | None = None
    description: str | None = None
    event_kinds: tuple[EventKind, ...] | None = None
    enabled: bool | None = None


class Store(Protocol):
    async def add_endpoint(self, endpoint: Endpoint, secret_encrypted: str) -> None: ...

    async def list_endpoints(self, user_id: str) -> list[Endpoint]: ...

    async def get_endpoint(self, user_id: str, endpoint_id: UUID) -> Endpoint | None: ...

    async def update_endpoint(
        self, user_id: str, endpoint_id: UUID, changes: EndpointChanges, now: datetime
    ) -> Endpoint | None:
        """Apply `changes`; enabling clears the disabled reason and the failure count, and
        makes the endpoint's pending deliveries due now."""
        ...

    async def delete_endpoint(self, user_id: str, endpoint_id: UUID) -> bool: ...

    async def subscribed_endpoints(self, user_id: str, kind: EventKind) -> list[UUID]:
        """The enabled endpoints of `user_id` whose filter has `kind`."""
        ...

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> int:
        """Insert them, skipping any (endpoint, event) already there; how many were new."""
        ...

    async def claim_due(
        self, owner: str, now: datetime, lease_s: float, limit: int
    ) -> list[DueDelivery]:
        """Lease up to `limit` due pending deliveries of enabled endpoints to `owner`; none
        that another replica holds under an unexpired lease."""
        ...

    async def record_attempt(self, record: AttemptRecord, policy: DisablePolicy) -> bool:
        """Store the attempt and the delivery's next state (only while `owner` still holds its
        lease: False otherwise, nothing stored) and count it on the endpoint, disabling the
        endpoint when `policy` says so."""
        ...

    async def list_deliveries(
        self, user_id: str, endpoint_id: UUID, status: DeliveryStatus | None, limit: int
    ) -> list[Delivery] | None:
        """Newest first; None when the endpoint is not the user's."""
        ...

    async def list_attempts(
        self, user_id: str, endpoint_id: UUID, delivery_id: UUID
    ) -> list[Attempt] | None: ...

    async def replay(
        self, user_id: str, endpoint_id: UUID, delivery_id: UUID, now: datetime
    ) -> Delivery | None:
        """Queue the delivery again, due now, its retry schedule restarted."""
        ...

    async def queue_depth(self, now: datetime) -> int:
        """Pending deliveries due by `now` (of enabled endpoints)."""
        ...

    async def purge_finished(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` succeeded or failed deliveries (with their attempts) last
        updated before `before`; how many."""
        ...


class Sender(Protocol):
    async def send(
        self, url: str, webhook_id: str, secret: str, payload: dict[str, Any]
    ) -> SendResult:
        """One signed HTTP attempt; never raises for a receiver's or a network's failure."""
        ...


class SecretCipher(Protocol):
    def encrypt(self, secret: str) -> str: ...

    def decrypt(self, token: str) -> str: ...
