"""Fenced claims (a lease token checked by every write), the durable start of a provider call,
and slots held for provider jobs that may still run unfollowed.

`lease_token` changes with every claim and recovery: a holder that lost its claim cannot record
anything. `submit_started_at` is set before a job-creating call to a provider without
idempotency and cleared when the provider answers: a claim recovered with it set is in doubt.
`slot_held_until` keeps an ended job's account slot busy while its provider job may still be
running unfollowed. Partial indexes serve the sweep of submitted jobs past their deadline and
the count of held slots.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dispatch_jobs",
        sa.Column("lease_token", postgresql.UUID(as_uuid=True), nullable=True),
        schema="dispatcher",
    )
    op.add_column(
        "dispatch_jobs",
        sa.Column("submit_started_at", sa.DateTime(timezone=True), nullable=True),
        schema="dispatcher",
    )
    op.add_column(
        "dispatch_jobs",
        sa.Column("slot_held_until", sa.DateTime(timezone=True), nullable=True),
        schema="dispatcher",
    )
    op.create_index(
        "ix_dispatch_jobs_held_slots",
        "dispatch_jobs",
        ["account_id", "slot_held_until"],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text("slot_held_until IS NOT NULL"),
    )
    op.create_index(
        "ix_dispatch_jobs_submitted_deadline",
        "dispatch_jobs",
        ["deadline_at"],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text("state = 'submitted'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_dispatch_jobs_submitted_deadline", table_name="dispatch_jobs", schema="dispatcher"
    )
    op.drop_index("ix_dispatch_jobs_held_slots", table_name="dispatch_jobs", schema="dispatcher")
    op.drop_column("dispatch_jobs", "slot_held_until", schema="dispatcher")
    op.drop_column("dispatch_jobs", "submit_started_at", schema="dispatcher")
    op.drop_column("dispatch_jobs", "lease_token", schema="dispatcher")
