"""uploads: files users store to use as generation inputs; the retention scan's index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "api"


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("object_key", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        schema=SCHEMA,
    )
    op.create_index("ix_uploads_user_created", "uploads", ["user_id", "created_at"], schema=SCHEMA)
    op.create_index("ix_uploads_created", "uploads", ["created_at"], schema=SCHEMA)
    op.create_index(
        "ix_generations_terminal_completed",
        "generations",
        ["completed_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('cancelled', 'completed', 'failed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_generations_terminal_completed", table_name="generations", schema=SCHEMA)
    op.drop_index("ix_uploads_created", table_name="uploads", schema=SCHEMA)
    op.drop_index("ix_uploads_user_created", table_name="uploads", schema=SCHEMA)
    op.drop_table("uploads", schema=SCHEMA)
