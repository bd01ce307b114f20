"""The audit log of admin changes: who, what, when, the target before and after (no secrets).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
        schema="dispatcher",
    )
    op.create_index("ix_admin_audit_target", "admin_audit", ["target", "id"], schema="dispatcher")


def downgrade() -> None:
    op.drop_index("ix_admin_audit_target", table_name="admin_audit", schema="dispatcher")
    op.drop_table("admin_audit", schema="dispatcher")
