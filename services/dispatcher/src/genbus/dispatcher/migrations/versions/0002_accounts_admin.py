"""accounts admin: credential names, daily-cap index, account constraints

Submissions per account per UTC day are derived from dispatch_jobs (account_id, submitted_at),
so the daily cap needs an index, not a counter.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "provider_accounts",
        sa.Column("credential_names", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="dispatcher",
    )
    op.create_check_constraint(
        "ck_provider_accounts_status",
        "provider_accounts",
        "status IN ('active', 'exhausted', 'disabled')",
        schema="dispatcher",
    )
    op.create_check_constraint(
        "ck_provider_accounts_max_concurrent",
        "provider_accounts",
        "max_concurrent >= 1",
        schema="dispatcher",
    )
    op.create_check_constraint(
        "ck_provider_accounts_daily_cap",
        "provider_accounts",
        "daily_cap IS NULL OR daily_cap >= 1",
        schema="dispatcher",
    )
    op.create_index(
        "ix_dispatch_jobs_account_day",
        "dispatch_jobs",
        ["account_id", "submitted_at"],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text("submitted_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_dispatch_jobs_account_day",
        table_name="dispatch_jobs",
        schema="dispatcher",
        postgresql_where=sa.text("submitted_at IS NOT NULL"),
    )
    for name in (
        "ck_provider_accounts_daily_cap",
        "ck_provider_accounts_max_concurrent",
        "ck_provider_accounts_status",
    ):
        op.drop_constraint(name, "provider_accounts", schema="dispatcher", type_="check")
    op.drop_column("provider_accounts", "credential_names", schema="dispatcher")
