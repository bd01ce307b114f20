"""Alembic environment of the dispatcher schema."""

from sqlmodel import SQLModel

import genbus.dispatcher.adapters.tables  # noqa: F401  (registers the tables)
from genbus.runtime.migrations import run_env

run_env(SQLModel.metadata)
