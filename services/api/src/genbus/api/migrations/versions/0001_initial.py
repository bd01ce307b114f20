"""generations and outbox

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "api"


def _timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("operation_type", sa.String(length=48), nullable=False),
        sa.Column("provider_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("canonical_params", postgresql.JSONB(), nullable=False),
        sa.Column("inputs", postgresql.JSONB(), nullable=False),
        sa.Column("canonical_inputs", postgresql.JSONB(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        _timestamp("scheduled_at", nullable=True),
        _timestamp("deadline_at", nullable=False),
        sa.Column("reproducible_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("metadata", postgresql.JSONB(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("provider_job_id", sa.String(length=256), nullable=True),
        sa.Column("asset", postgresql.JSONB(), nullable=True),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
        _timestamp("submitted_at", nullable=True),
        _timestamp("completed_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(
            "status IN ('cancelled', 'completed', 'failed', 'pending', 'processing')",
            name="ck_generations_status",
        ),
        sa.CheckConstraint("priority BETWEEN 0 AND 10", name="ck_generations_priority"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_generations_user_recent",
        "generations",
        ["user_id", sa.literal_column("created_at DESC"), "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_generations_open_deadline",
        "generations",
        ["deadline_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        _timestamp("published_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        schema=SCHEMA,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("outbox", schema=SCHEMA)
    op.drop_table("generations", schema=SCHEMA)
