"""Rows of the webhooks tables as domain objects, and the claim statement."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import RowMapping

from genbus.webhooks.adapters.tables import ATTEMPTS, ENDPOINTS, SCHEMA
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
    return Endpoint(
        id=row["id"],
        user_id=row["user_id"],
        url=row["url"],
        description=row["description"],
        event_kinds=tuple(EventKind(k) for k in row["event_kinds"]),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        disabled_at=row["disabled_at"],
        consecutive_failures=row["consecutive_failures"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def delivery_of(row: RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        source_event_id=row["event_id"],
        webhook_id=row["webhook_id"],
        event_type=row["event_type"],
        generation_id=row["generation_id"],
        status=DeliveryStatus(row["status"]),
        tries=row["tries"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def attempt_of(row: RowMapping) -> Attempt:
    return Attempt(**{c.name: row[c.name] for c in ATTEMPTS.c})
