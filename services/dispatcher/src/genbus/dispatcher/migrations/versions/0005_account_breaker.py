"""A circuit breaker per provider account, shared by every dispatcher replica.

`breaker_failures` counts transient failures in a row (timeouts, 5xx, answers lost) since the
last success or trip; `breaker_open_until` keeps the account out of selection after a trip;
`breaker_opened_count` counts trips in a row (0: closed), doubling each pause.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "provider_accounts",
        sa.Column("breaker_failures", sa.Integer(), server_default="0", nullable=False),
        schema="dispatcher",
    )
    op.add_column(
        "provider_accounts",
        sa.Column("breaker_open_until", sa.DateTime(timezone=True), nullable=True),
        schema="dispatcher",
    )
    op.add_column(
        "provider_accounts",
        sa.Column("breaker_opened_count", sa.Integer(), server_default="0", nullable=False),
        schema="dispatcher",
    )


def downgrade() -> None:
    op.drop_column("provider_accounts", "breaker_opened_count", schema="dispatcher")
    op.drop_column("provider_accounts", "breaker_open_until", schema="dispatcher")
    op.drop_column("provider_accounts", "breaker_failures", schema="dispatcher")
