"""Index the dispatch queue in claim order, across providers.

The claim reads queued jobs in (priority DESC, due_at, seq) order filtered by the providers that
have a free account; an index led by provider_id could not serve that order for several
providers at once, so a long queue was sorted on every claim.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_dispatch_jobs_queue", table_name="dispatch_jobs", schema="dispatcher")
    op.create_index(
        "ix_dispatch_jobs_queue_order",
        "dispatch_jobs",
        [sa.literal_column("priority DESC"), "due_at", "seq"],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text("state = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_dispatch_jobs_queue_order", table_name="dispatch_jobs", schema="dispatcher")
    op.create_index(
        "ix_dispatch_jobs_queue",
        "dispatch_jobs",
        ["provider_id", sa.literal_column("priority DESC"), "due_at", "seq"],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text("state = 'queued'"),
    )
