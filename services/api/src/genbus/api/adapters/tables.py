"""The api's tables, in Postgres schema `api`: generations, their change log (what live-status
streams read), idempotency keys, API keys, and the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from genbus.api.adapters import asset_tables  # noqa: F401  (registers generation_assets)
from genbus.api.domain.status import NON_TERMINAL, TERMINAL, GenerationStatus
from genbus.runtime.outbox import outbox_table

SCHEMA = "api"


def _sql_list(values: Iterable[GenerationStatus]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(str(v) for v in values))


def _timestamp(nullable: bool) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(JSONB, nullable=nullable))


class GenerationRow(SQLModel, table=True):
    """One generation. Status changes are compare-and-set updates (see `repository.py`)."""

    __tablename__ = "generations"
    __table_args__ = (
        CheckConstraint(f"status IN ({_sql_list(GenerationStatus)})", name="ck_generations_status"),
        CheckConstraint("priority BETWEEN 0 AND 10", name="ck_generations_priority"),
        {"schema": SCHEMA},
    )

    id: UUID = Field(primary_key=True)
    user_id: str = Field(max_length=128)
    operation_type: str = Field(max_length=48)
    provider_id: str = Field(max_length=32)
    status: str = Field(max_length=16)
    params: dict[str, Any] = _json()
    canonical_params: dict[str, Any] = _json()
    inputs: list[dict[str, Any]] = _json()
    canonical_inputs: list[dict[str, Any]] = _json()
    priority: int = Field(sa_column=Column(SmallInteger, nullable=False))
    scheduled_at: datetime | None = _timestamp(nullable=True)
    deadline_at: datetime = _timestamp(nullable=False)
    reproducible_hash: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=200)
    # `metadata` is taken by SQLAlchemy's declarative base; only the attribute is renamed.
    metadata_: dict[str, Any] = Field(
        default=None, sa_column=Column("metadata", JSONB, nullable=False)
    )
    attempt: int = Field(default=0)
    account_id: str | None = Field(default=None, max_length=64)
    provider_job_id: str | None = Field(default=None, max_length=256)
    asset: dict[str, Any] | None = _json(nullable=True)
    error: dict[str, Any] | None = _json(nullable=True)
    created_at: datetime = _timestamp(nullable=False)
    updated_at: datetime = _timestamp(nullable=False)
    submitted_at: datetime | None = _timestamp(nullable=True)
    completed_at: datetime | None = _timestamp(nullable=True)
    #: The generation this one retries. No foreign key: deleting a parent keeps its retries.
    parent_generation_id: UUID | None = Field(default=None)
    prompt_version_id: str | None = Field(default=None, max_length=128)
    #: Credits, by the price table at creation (None: no price), and as the provider reported.
    estimated_cost: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    actual_cost: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    #: Why the dispatcher holds it back (`GenerationWaiting`: the one with the highest
    #: `wait_sequence` seen), and when it is tried again.
    dispatch_wait: str | None = Field(default=None, max_length=32)
    next_attempt_at: datetime | None = _timestamp(nullable=True)
    wait_sequence: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


generations: Table = GenerationRow.__table__  # type: ignore[attr-defined]

# A user's generations, newest first, with the id as a stable tie-breaker: the keyset of pages.
Index(
    "ix_generations_user_recent",
    generations.c.user_id,
    generations.c.created_at.desc(),
    generations.c.id.desc(),
)
# What the deadline reconciler scans: only generations that can still change.
Index(
    "ix_generations_open_deadline",
    generations.c.deadline_at,
    postgresql_where=text(f"status IN ({_sql_list(NON_TERMINAL)})"),
)

# Queue position (`queue_standing`): pending generations of a provider and operation in
# (priority, user, arrival) order, each user's generations in flight, and recent turnover.
Index(
    "ix_generations_pending_queue",
    generations.c.provider_id,
    generations.c.operation_type,
    generations.c.priority,
    generations.c.user_id,
    generations.c.created_at,
    generations.c.id,
    postgresql_where=text("status = 'pending'"),
)
Index(
    "ix_generations_processing_user",
    generations.c.user_id,
    postgresql_where=text("status = 'processing'"),
)
Index(
    "ix_generations_provider_turnover",
    generations.c.provider_id,
    generations.c.completed_at,
    postgresql_where=text("submitted_at IS NOT NULL"),
)

# What the archiver looks through for outputs to copy (`asset_queue.discover`).
Index(
    "ix_generations_completed_recent",
    generations.c.completed_at,
    postgresql_where=text("status = 'completed' AND asset IS NOT NULL"),
)

# What asset retention deletes, oldest first (`GENBUS_API_ASSET_RETENTION_DAYS`).
Index(
    "ix_generations_terminal_completed",
    generations.c.completed_at,
    postgresql_where=text(f"status IN ({_sql_list(TERMINAL)})"),
)

#: One row per change of a generation (creation included), written in the transaction that made
#: the change. `id` is the SSE event id; per user it grows in commit order (writers serialise on
#: a per-user advisory lock), so "every row after id N" never misses a later commit.
generation_events = Table(
    "generation_events",
    SQLModel.metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("generation_id", Uuid, nullable=False),
    Column("user_id", String(128), nullable=False),
    #: `generation` (a new state; payload: the generation) or `generation.deleted`.
    Column("event_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_generation_events_user", "user_id", "id"),
    Index("ix_generation_events_generation", "generation_id", "id"),
    Index("ix_generation_events_created", "created_at"),
    schema=SCHEMA,
)

#: A user's idempotency key and the fingerprint of the request that first used it.
idempotency_keys = Table(
    "idempotency_keys",
    SQLModel.metadata,
    Column("user_id", String(128), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("generation_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    Index("ix_idempotency_keys_generation", "generation_id"),
    Index("ix_idempotency_keys_created", "created_at"),
    schema=SCHEMA,
)

#: API keys by SHA-256 digest; the key itself is never stored.
api_keys = Table(
    "api_keys",
    SQLModel.metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("admin", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    #: The key's tier (null: the default tier) and its overrides of the tier's limits.
    Column("tier", String(64), nullable=True),
    Column("limits", JSONB, nullable=True),
    Index("ix_api_keys_user", "user_id"),
    schema=SCHEMA,
)

#: Generations created per user and UTC day: the daily quota's counter, incremented in the
#: creating transaction only while under the quota (so the count is exact under concurrency).
daily_usage = Table(
    "daily_usage",
    SQLModel.metadata,
    Column("user_id", String(128), nullable=False),
    Column("day", Date, nullable=False),
    Column("generations", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "day", name="pk_daily_usage"),
    schema=SCHEMA,
)

outbox: Table = outbox_table(SQLModel.metadata, SCHEMA)


def api_metadata() -> MetaData:
    """A copy of only the api's tables, for Alembic: other services' SQLModel tables may share
    `SQLModel.metadata` in one process (tests), and are none of the api's business."""
    metadata = MetaData()
    for table in SQLModel.metadata.tables.values():
        if table.schema == SCHEMA:
            table.to_metadata(metadata)
    return metadata
