"""limits and costs: API key tiers and overrides, the daily quota counter, generation costs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "api"


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("tier", sa.String(length=64), nullable=True), schema=SCHEMA)
    op.add_column(
        "api_keys",
        sa.Column("limits", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema=SCHEMA,
    )
    op.add_column(
        "generations", sa.Column("estimated_cost", sa.Double(), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "generations", sa.Column("actual_cost", sa.Double(), nullable=True), schema=SCHEMA
    )
    op.create_table(
        "daily_usage",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("generations", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name="pk_daily_usage"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("daily_usage", schema=SCHEMA)
    op.drop_column("generations", "actual_cost", schema=SCHEMA)
    op.drop_column("generations", "estimated_cost", schema=SCHEMA)
    op.drop_column("api_keys", "limits", schema=SCHEMA)
    op.drop_column("api_keys", "tier", schema=SCHEMA)
