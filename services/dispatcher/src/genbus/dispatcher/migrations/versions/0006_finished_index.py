"""Index finished dispatch jobs by when they finished, for the retention purge.

The purge deletes finished jobs older than the retention in bounded batches; without this index
each pass would scan the whole table.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_dispatch_jobs_finished",
        "dispatch_jobs",
        ["finished_at"],
        unique=False,
        schema="dispatcher",
        postgresql_where=sa.text("state IN ('completed', 'failed', 'cancelled')"),
    )


def downgrade() -> None:
    op.drop_index("ix_dispatch_jobs_finished", table_name="dispatch_jobs", schema="dispatcher")
