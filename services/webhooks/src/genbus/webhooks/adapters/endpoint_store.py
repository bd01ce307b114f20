"""The endpoints part of the store, on Postgres (schema `webhooks`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String, any_, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.webhooks.adapters.rows import (
    ENDPOINT_COLUMNS,
    endpoint_of,
)
from genbus.webhooks.adapters.tables import DELIVERIES, ENDPOINTS
from genbus.webhooks.domain.model import (
    DeliveryStatus,
    Endpoint,
    EventKind,
)
from genbus.webhooks.service_layer.ports import EndpointChanges


class EndpointStore:
    """Callers' endpoints: registered, listed, changed, deleted, and found by subscription."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_endpoint(self, endpoint: Endpoint, secret_encrypted: str) -> None:
        values: dict[str, Any] = {
            "id": endpoint.id,
            "user_id": endpoint.user_id,
            "url": endpoint.url,
            "description": endpoint.description,
            "event_kinds": [k.value for k in endpoint.event_kinds],
            "secret_encrypted": secret_encrypted,
            "enabled": endpoint.enabled,
            "created_at": endpoint.created_at,
            "updated_at": endpoint.updated_at,
        }
        async with self._engine.begin() as conn:
            await conn.execute(insert(ENDPOINTS).values(**values))

    async def list_endpoints(self, user_id: str) -> list[Endpoint]:
        query = (
            select(*ENDPOINT_COLUMNS)
            .where(ENDPOINTS.c.user_id == user_id)
            .order_by(ENDPOINTS.c.created_at, ENDPOINTS.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [endpoint_of(row) for row in rows]

    async def get_endpoint(self, user_id: str, endpoint_id: UUID) -> Endpoint | None:
        query = select(*ENDPOINT_COLUMNS).where(
            ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.user_id == user_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else endpoint_of(row)

    async def update_endpoint(
        self, user_id: str, endpoint_id: UUID, changes: EndpointChanges, now: datetime
    ) -> Endpoint | None:
        values: dict[str, Any] = {"updated_at": now}
        if changes.url is not None:
            values["url"] = changes.url
        if changes.description is not None:
            values["description"] = changes.description
        if changes.event_kinds is not None:
            values["event_kinds"] = [k.value for k in changes.event_kinds]
        if changes.enabled is True:
            values.update(
                enabled=True,
                disabled_reason=None,
                disabled_at=None,
                consecutive_failures=0,
                failing_since=None,
            )
        elif changes.enabled is False:
            values.update(enabled=False, disabled_reason="disabled by the caller", disabled_at=now)
        statement = (
            update(ENDPOINTS)
            .where(ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.user_id == user_id)
            .values(**values)
            .returning(*ENDPOINT_COLUMNS)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).mappings().first()
            if row is not None and changes.enabled is True:
                await conn.execute(
                    update(DELIVERIES)
                    .where(
                        DELIVERIES.c.endpoint_id == endpoint_id,
                        DELIVERIES.c.status == DeliveryStatus.PENDING.value,
                    )
                    .values(next_attempt_at=now, updated_at=now)
                )
        return None if row is None else endpoint_of(row)

    async def delete_endpoint(self, user_id: str, endpoint_id: UUID) -> bool:
        statement = delete(ENDPOINTS).where(
            ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.user_id == user_id
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def subscribed_endpoints(self, user_id: str, kind: EventKind) -> list[UUID]:
        query = select(ENDPOINTS.c.id).where(
            ENDPOINTS.c.user_id == user_id,
            ENDPOINTS.c.enabled,
            literal(kind.value, String(16)) == any_(ENDPOINTS.c.event_kinds),
        )
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars().all())
