"""In-memory stand-ins of the webhooks service's store, sender and cipher."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

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
from genbus.webhooks.service_layer.ports import AttemptRecord, EndpointChanges, NewDelivery


@dataclasses.dataclass
class Row:
    delivery: Delivery
    payload: dict[str, Any]
    lease_owner: str | None = None
    lease_until: datetime | None = None


class FakeStore:
    def __init__(self) -> None:
        self.endpoints: dict[UUID, Endpoint] = {}
        self.secrets: dict[UUID, str] = {}
        self.rows: dict[UUID, Row] = {}
        self.attempts: list[Attempt] = []

    async def add_endpoint(self, endpoint: Endpoint, secret_encrypted: str) -> None:
        self.endpoints[endpoint.id] = endpoint
        self.secrets[endpoint.id] = secret_encrypted

    async def list_endpoints(self, user_id: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.user_id == user_id]

    async def get_endpoint(self, user_id: str, endpoint_id: UUID) -> Endpoint | None:
        endpoint = self.endpoints.get(endpoint_id)
        return endpoint if endpoint is not None and endpoint.user_id == user_id else None

    async def update_endpoint(
        self, user_id: str, endpoint_id: UUID, changes: EndpointChanges, now: datetime
    ) -> Endpoint | None:
        endpoint = await self.get_endpoint(user_id, endpoint_id)
        if endpoint is None:
            return None
        values: dict[str, Any] = {"updated_at": now}
        if changes.url is not None:
            values["url"] = changes.url
        if changes.event_kinds is not None:
            values["event_kinds"] = changes.event_kinds
        if changes.enabled is True:
            values.update(
                enabled=True, disabled_reason=None, consecutive_failures=0, failing_since=None
            )
        elif changes.enabled is False:
            values.update(enabled=False, disabled_reason="disabled by the caller")
        self.endpoints[endpoint_id] = dataclasses.replace(endpoint, **values)
        return self.endpoints[endpoint_id]

    async def delete_endpoint(self, user_id: str, endpoint_id: UUID) -> bool:
        if await self.get_endpoint(user_id, endpoint_id) is None:
            return False
        del self.endpoints[endpoint_id]
        return True

    async def subscribed_endpoints(self, user_id: str, kind: EventKind) -> list[UUID]:
        return [
            e.id
            for e in self.endpoints.values()
            if e.user_id == user_id and e.enabled and e.wants(kind)
        ]

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> int:
        added = 0
        for d in deliveries:
            if any(
                r.delivery.endpoint_id == d.endpoint_id
                and r.delivery.source_event_id == d.source_event_id
                for r in self.rows.values()
            ):
                continue
            self.rows[d.id] = Row(
                Delivery(
                    id=d.id,
                    endpoint_id=d.endpoint_id,
                    source_event_id=d.source_event_id,
                    webhook_id=d.webhook_id,
                    event_type=d.event_type,
                    generation_id=d.generation_id,
                    status=DeliveryStatus.PENDING,
                    tries=0,
                    next_attempt_at=d.next_attempt_at,
                    last_status_code=None,
                    last_error=None,
                    created_at=d.next_attempt_at,
                    updated_at=d.next_attempt_at,
                ),
                d.payload,
            )
            added += 1
        return added

    async def claim_due(
        self, owner: str, now: datetime, lease_s: float, limit: int
    ) -> list[DueDelivery]:
        claimed: list[DueDelivery] = []
        for row in self.rows.values():
            d = row.delivery
            endpoint = self.endpoints.get(d.endpoint_id)
            if (
                len(claimed) >= limit
                or endpoint is None
                or not endpoint.enabled
                or d.status is not DeliveryStatus.PENDING
                or d.next_attempt_at is None
                or d.next_attempt_at > now
                or (row.lease_until is not None and row.lease_until >= now)
            ):
                continue
            row.lease_owner, row.lease_until = owner, now + timedelta(seconds=lease_s)
            claimed.append(
                DueDelivery(
                    id=d.id,
                    endpoint_id=d.endpoint_id,
                    webhook_id=d.webhook_id,
                    url=endpoint.url,
                    secret_encrypted=self.secrets[endpoint.id],
                    payload=row.payload,
                    tries=d.tries,
                )
            )
        return claimed

    async def record_attempt(self, record: AttemptRecord, policy: DisablePolicy) -> bool:
        row = self.rows[record.delivery_id]
        if row.lease_owner != record.owner:
            return False
        row.lease_owner = row.lease_until = None
        result = record.result
        row.delivery = dataclasses.replace(
            row.delivery,
            status=record.status,
            tries=record.tries,
            next_attempt_at=record.next_attempt_at,
            last_status_code=result.status_code,
            last_error=result.error,
        )
        self.attempts.append(
            Attempt(
                id=uuid4(),
                delivery_id=record.delivery_id,
                attempted_at=record.attempted_at,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
                succeeded=result.succeeded,
            )
        )
        endpoint = self.endpoints[record.endpoint_id]
        if result.succeeded:
            endpoint = dataclasses.replace(endpoint, consecutive_failures=0, failing_since=None)
        else:
            failures = endpoint.consecutive_failures + 1
            since = endpoint.failing_since or record.attempted_at
            endpoint = dataclasses.replace(
                endpoint, consecutive_failures=failures, failing_since=since
            )
            if policy.should_disable(failures, since, record.attempted_at):
                reason = policy.reason(failures, result.error or "")
                endpoint = dataclasses.replace(endpoint, enabled=False, disabled_reason=reason)
        self.endpoints[endpoint.id] = endpoint
        return True

    async def list_deliveries(
        self, user_id: str, endpoint_id: UUID, status: DeliveryStatus | None, limit: int
    ) -> list[Delivery] | None:
        if await self.get_endpoint(user_id, endpoint_id) is None:
            return None
        return [
            r.delivery
            for r in self.rows.values()
            if r.delivery.endpoint_id == endpoint_id and status in (None, r.delivery.status)
        ][:limit]

    async def list_attempts(
        self, user_id: str, endpoint_id: UUID, delivery_id: UUID
    ) -> list[Attempt] | None:
        return [a for a in self.attempts if a.delivery_id == delivery_id]

    async def replay(
        self, user_id: str, endpoint_id: UUID, delivery_id: UUID, now: datetime
    ) -> Delivery | None:
        row = self.rows[delivery_id]
        row.delivery = dataclasses.replace(
            row.delivery, status=DeliveryStatus.PENDING, tries=0, next_attempt_at=now
        )
        return row.delivery

    async def queue_depth(self, now: datetime) -> int:
        return sum(
            1
            for r in self.rows.values()
            if r.delivery.status is DeliveryStatus.PENDING
            and r.delivery.next_attempt_at is not None
            and r.delivery.next_attempt_at <= now
            and self.endpoints[r.delivery.endpoint_id].enabled
        )

    async def purge_finished(self, before: datetime, limit: int) -> int:
        old = [
            i
            for i, r in self.rows.items()
            if r.delivery.status is not DeliveryStatus.PENDING and r.delivery.updated_at < before
        ][:limit]
        for i in old:
            del self.rows[i]
        return len(old)


class FakeSender:
    """Answers with `results` in turn (the last one repeated); records what it sent."""

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results) or [SendResult(204, None, 1)]
        self.sent: list[tuple[str, str, str, dict[str, Any]]] = []

    async def send(
        self, url: str, webhook_id: str, secret: str, payload: dict[str, Any]
    ) -> SendResult:
        self.sent.append((url, webhook_id, secret, payload))
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


class PlainCipher:
    def encrypt(self, secret: str) -> str:
        return "enc:" + secret

    def decrypt(self, token: str) -> str:
        return token.removeprefix("enc:")
