"""The store of endpoints, deliveries and attempts, on Postgres (schema `webhooks`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from genbus.runtime.rows import dataclass_from_row
from genbus.webhooks.adapters.endpoint_store import EndpointStore
from genbus.webhooks.adapters.rows import (
    CLAIM,
    attempt_of,
    delivery_of,
)
from genbus.webhooks.adapters.tables import ATTEMPTS, DELIVERIES, ENDPOINTS
from genbus.webhooks.domain.model import (
    Attempt,
    Delivery,
    DeliveryStatus,
    DueDelivery,
)
from genbus.webhooks.domain.retry import DisablePolicy
from genbus.webhooks.service_layer.ports import AttemptRecord, NewDelivery


class SqlStore(EndpointStore):
    """The whole store: endpoints (`EndpointStore`), deliveries and attempts."""

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> int:
        if not deliveries:
            return 0
        rows = [
            {
                "id": d.id,
                "endpoint_id": d.endpoint_id,
                "event_id": d.source_event_id,
                "webhook_id": d.webhook_id,
                "event_type": d.event_type,
                "generation_id": d.generation_id,
                "payload": d.payload,
                "status": DeliveryStatus.PENDING.value,
                "next_attempt_at": d.next_attempt_at,
            }
            for d in deliveries
        ]
        statement = (
            pg_insert(DELIVERIES)
            .values(rows)
            .on_conflict_do_nothing(constraint="uq_deliveries_endpoint_event")
            .returning(DELIVERIES.c.id)
        )
        async with self._engine.begin() as conn:
            return len((await conn.execute(statement)).all())

    async def claim_due(
        self, owner: str, now: datetime, lease_s: float, limit: int
    ) -> list[DueDelivery]:
        params = {
            "now": now,
            "owner": owner,
            "limit": limit,
            "lease_until": now + timedelta(seconds=lease_s),
        }
        async with self._engine.begin() as conn:
            rows = (await conn.execute(CLAIM, params)).mappings().all()
        return [dataclass_from_row(DueDelivery, r) for r in rows]

    async def record_attempt(self, record: AttemptRecord, policy: DisablePolicy) -> bool:
        result = record.result
        async with self._engine.begin() as conn:
            # The endpoint row first, as enabling and deleting an endpoint lock it before its
            # deliveries: one lock order, no deadlock. It also serialises the failure count.
            endpoint = (
                (
                    await conn.execute(
                        select(
                            ENDPOINTS.c.enabled,
                            ENDPOINTS.c.consecutive_failures,
                            ENDPOINTS.c.failing_since,
                        )
                        .where(ENDPOINTS.c.id == record.endpoint_id)
                        .with_for_update()
                    )
                )
                .mappings()
                .first()
            )
            updated = await conn.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id == record.delivery_id, DELIVERIES.c.lease_owner == record.owner
                )
                .values(
                    status=record.status.value,
                    tries=record.tries,
                    next_attempt_at=record.next_attempt_at,
                    lease_owner=None,
                    lease_until=None,
                    last_status_code=result.status_code,
                    last_error=result.error,
                    updated_at=record.attempted_at,
                )
            )
            if endpoint is None or not updated.rowcount:
                return False
            await conn.execute(
                insert(ATTEMPTS).values(
                    id=uuid4(),
                    delivery_id=record.delivery_id,
                    attempted_at=record.attempted_at,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=result.duration_ms,
                    succeeded=result.succeeded,
                )
            )
            values = _counted(endpoint, record, policy)
            await conn.execute(
                update(ENDPOINTS).where(ENDPOINTS.c.id == record.endpoint_id).values(**values)
            )
        return True

    async def list_deliveries(
        self, user_id: str, endpoint_id: UUID, status: DeliveryStatus | None, limit: int
    ) -> list[Delivery] | None:
        if await self.get_endpoint(user_id, endpoint_id) is None:
            return None
        query = select(DELIVERIES).where(DELIVERIES.c.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(DELIVERIES.c.status == status.value)
        query = query.order_by(DELIVERIES.c.created_at.desc(), DELIVERIES.c.id).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [delivery_of(row) for row in rows]

    async def list_attempts(
        self, user_id: str, endpoint_id: UUID, delivery_id: UUID
    ) -> list[Attempt] | None:
        owned = (
            select(DELIVERIES.c.id)
            .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
            .where(
                DELIVERIES.c.id == delivery_id,
                DELIVERIES.c.endpoint_id == endpoint_id,
                ENDPOINTS.c.user_id == user_id,
            )
        )
        query = (
            select(ATTEMPTS)
            .where(ATTEMPTS.c.delivery_id == delivery_id)
            .order_by(ATTEMPTS.c.attempted_at, ATTEMPTS.c.id)
        )
        async with self._engine.connect() as conn:
            if (await conn.execute(owned)).first() is None:
                return None
            rows = (await conn.execute(query)).mappings().all()
        return [attempt_of(row) for row in rows]

    async def replay(
        self, user_id: str, endpoint_id: UUID, delivery_id: UUID, now: datetime
    ) -> Delivery | None:
        owned = select(ENDPOINTS.c.id).where(
            ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.user_id == user_id
        )
        statement = (
            update(DELIVERIES)
            .where(
                DELIVERIES.c.id == delivery_id,
                DELIVERIES.c.endpoint_id == endpoint_id,
                DELIVERIES.c.endpoint_id.in_(owned),
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                tries=0,
                next_attempt_at=now,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
            .returning(*DELIVERIES.c)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).mappings().first()
        return None if row is None else delivery_of(row)

    async def queue_depth(self, now: datetime) -> int:
        query = (
            select(func.count())
            .select_from(DELIVERIES.join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id))
            .where(
                and_(
                    DELIVERIES.c.status == DeliveryStatus.PENDING.value,
                    DELIVERIES.c.next_attempt_at <= now,
                    ENDPOINTS.c.enabled,
                )
            )
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def purge_finished(self, before: datetime, limit: int) -> int:
        oldest = (
            select(DELIVERIES.c.id)
            .where(
                DELIVERIES.c.status != DeliveryStatus.PENDING.value,
                DELIVERIES.c.updated_at < before,
            )
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(DELIVERIES).where(DELIVERIES.c.id.in_(oldest)))
        return int(result.rowcount)


def _counted(endpoint: Any, record: AttemptRecord, policy: DisablePolicy) -> dict[str, Any]:
    """The endpoint's failure count after this attempt, and whether it is now disabled."""
    if record.result.succeeded:
        return {"consecutive_failures": 0, "failing_since": None}
    failures = endpoint["consecutive_failures"] + 1
    since = endpoint["failing_since"] or record.attempted_at
    values: dict[str, Any] = {"consecutive_failures": failures, "failing_since": since}
    # An endpoint already disabled (by the caller, or by a concurrent attempt) keeps its reason.
    if endpoint["enabled"] and policy.should_disable(failures, since, record.attempted_at):
        last = record.result.error or f"HTTP {record.result.status_code}"
        values.update(
            enabled=False,
            disabled_reason=policy.reason(failures, last),
            disabled_at=record.attempted_at,
            updated_at=record.attempted_at,
        )
    return values
