"""Alembic environment of the api: its own schema and version table (see genbus.runtime)."""

from genbus.api.adapters.tables import api_metadata
from genbus.runtime.migrations import run_env

run_env(api_metadata())
