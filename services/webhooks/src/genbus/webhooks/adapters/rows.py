"""Rows of the webhooks tables as domain objects, and the claim statement."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import RowMapping

from genbus.runtime.rows import dataclass_from_row
from genbus.webhooks.adapters.tables import ENDPOINTS, SCHEMA
from genbus.webhooks.domain.model import Attempt, Delivery, DeliveryStatus, Endpoint, EventKind

ENDPOINT_COLUMNS = [c for c in ENDPOINTS.c if c.name != "secret_encrypted"]

# Leases due deliveries of enabled endpoints; SKIP LOCKED: replicas claiming at once never
# wait for each other nor take the same row.
CLAIM = text(
    f"""
    WITH due AS (
        SELECT d.id FROM {SCHEMA}.deliveries d
        JOIN {SCHEMA}.endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND e.enabled
          AND (d.lease_until IS NULL OR d.lease_until < :now)
        ORDER BY d.next_attempt_at
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE {SCHEMA}.deliveries d SET lease_owner = :owner, lease_until = :lease_until
    FROM due, {SCHEMA}.endpoints e
    WHERE d.id = due.id AND e.id = d.endpoint_id
    RETURNING d.id, d.endpoint_id, d.webhook_id, d.payload, d.tries, e.url, e.secret_encrypted
    """
)


def endpoint_of(row: RowMapping) -> Endpoint:
    return dataclass_from_row(
        Endpoint, row, event_kinds=tuple(EventKind(k) for k in row["event_kinds"])
    )


def delivery_of(row: RowMapping) -> Delivery:
    return dataclass_from_row(
        Delivery, row, source_event_id=row["event_id"], status=DeliveryStatus(row["status"])
    )


def attempt_of(row: RowMapping) -> Attempt:
    return dataclass_from_row(Attempt, row)
