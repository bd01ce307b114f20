"""generation_assets: stored copies of generations' outputs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "api"


def upgrade() -> None:
    op.create_table(
        "generation_assets",
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.SmallInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("expected_media_type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_key", sa.String(length=512), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("media_type", sa.String(length=100), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("generation_id", "n", name="pk_generation_assets"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_generation_assets_due",
        "generation_assets",
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_generations_completed_recent",
        "generations",
        ["completed_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'completed' AND asset IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_generations_completed_recent", table_name="generations", schema=SCHEMA)
    op.drop_index("ix_generation_assets_due", table_name="generation_assets", schema=SCHEMA)
    op.drop_table("generation_assets", schema=SCHEMA)
