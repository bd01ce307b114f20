"""generations: why the dispatcher holds a pending generation back (GenerationWaiting), and
the indexes of a pending generation's queue position and estimated start

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "api"


def upgrade() -> None:
    op.add_column(
        "generations",
        sa.Column("dispatch_wait", sa.String(length=32), nullable=True),
        schema=SCHEMA,
    )
    op.add_column(
        "generations",
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.add_column(
        "generations",
        sa.Column("wait_sequence", sa.Integer(), server_default="0", nullable=False),
        schema=SCHEMA,
    )

    op.create_index(
        "ix_generations_pending_queue",
        "generations",
        ["provider_id", "operation_type", "priority", "user_id", "created_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_generations_processing_user",
        "generations",
        ["user_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'processing'"),
    )
    op.create_index(
        "ix_generations_provider_turnover",
        "generations",
        ["provider_id", "completed_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("submitted_at IS NOT NULL"),
    )


def downgrade() -> None:
    for name in (
        "ix_generations_provider_turnover",
        "ix_generations_processing_user",
        "ix_generations_pending_queue",
    ):
        op.drop_index(name, table_name="generations", schema=SCHEMA)
    op.drop_column("generations", "wait_sequence", schema=SCHEMA)
    op.drop_column("generations", "next_attempt_at", schema=SCHEMA)
    op.drop_column("generations", "dispatch_wait", schema=SCHEMA)
