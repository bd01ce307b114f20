"""The webhooks service's tables, in its own Postgres schema `webhooks`."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

SCHEMA = "webhooks"

metadata = MetaData(schema=SCHEMA)


def _now(name: str) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


ENDPOINTS = Table(
    "endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("event_kinds", ARRAY(String(16)), nullable=False),
    #: The Standard Webhooks signing secret, Fernet-encrypted; never returned after creation.
    Column("secret_encrypted", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_reason", Text, nullable=True),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    _now("created_at"),
    _now("updated_at"),
    Index("ix_endpoints_user", "user_id", "created_at"),
)

DELIVERIES = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("endpoint_id", Uuid, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("webhook_id", String(40), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("generation_id", Uuid, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", String(16), nullable=False),
    Column("tries", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    _now("created_at"),
    _now("updated_at"),
    # An event delivered twice by JetStream never makes a second delivery.
    UniqueConstraint("endpoint_id", "event_id", name="uq_deliveries_endpoint_event"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="ck_deliveries_status"),
    Index(
        "ix_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
    Index("ix_deliveries_endpoint", "endpoint_id", "created_at"),
)

ATTEMPTS = Table(
    "attempts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("delivery_id", Uuid, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Index("ix_attempts_delivery", "delivery_id", "attempted_at"),
)
