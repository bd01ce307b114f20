"""Alembic environment of the webhooks schema."""

from genbus.runtime.migrations import run_env
from genbus.webhooks.adapters.tables import metadata

run_env(metadata)
