"""generation events, idempotency keys, API keys; retries and prompt versions; keyset index

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "api"


def _timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "generations", sa.Column("parent_generation_id", sa.Uuid(), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "generations",
        sa.Column("prompt_version_id", sa.String(length=128), nullable=True),
        schema=SCHEMA,
    )
    # Pages are keyset on (created_at DESC, id DESC): the index now orders both that way.
    op.drop_index("ix_generations_user_recent", table_name="generations", schema=SCHEMA)
    op.create_index(
        "ix_generations_user_recent",
        "generations",
        ["user_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        schema=SCHEMA,
    )

    op.create_table(
        "generation_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_generation_events_user", "generation_events", ["user_id", "id"], schema=SCHEMA
    )
    op.create_index(
        "ix_generation_events_generation",
        "generation_events",
        ["generation_id", "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_generation_events_created", "generation_events", ["created_at"], schema=SCHEMA
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_idempotency_keys_generation", "idempotency_keys", ["generation_id"], schema=SCHEMA
    )
    op.create_index(
        "ix_idempotency_keys_created", "idempotency_keys", ["created_at"], schema=SCHEMA
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        schema=SCHEMA,
    )
    op.create_index("ix_api_keys_user", "api_keys", ["user_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("api_keys", schema=SCHEMA)
    op.drop_table("idempotency_keys", schema=SCHEMA)
    op.drop_table("generation_events", schema=SCHEMA)
    op.drop_index("ix_generations_user_recent", table_name="generations", schema=SCHEMA)
    op.create_index(
        "ix_generations_user_recent",
        "generations",
        ["user_id", sa.literal_column("created_at DESC"), "id"],
        schema=SCHEMA,
    )
    op.drop_column("generations", "prompt_version_id", schema=SCHEMA)
    op.drop_column("generations", "parent_generation_id", schema=SCHEMA)
