"""The hand-written migrations create exactly what the models declare, idempotently."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from genbus.api.__main__ import MIGRATIONS
from genbus.api.adapters.tables import SCHEMA, api_metadata
from genbus.runtime.db import create_engine
from genbus.runtime.migrations import upgrade_to_head

pytestmark = pytest.mark.integration


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, _: type_ != "schema" or name == SCHEMA,
            "version_table_schema": SCHEMA,
        },
    )
    return list(compare_metadata(context, api_metadata()))


async def test_migrations_match_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, database_url, SCHEMA)
    # Running again (another replica starting) is a no-op.
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, database_url, SCHEMA)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            version = (
                await conn.exec_driver_sql("SELECT version_num FROM api.alembic_version")
            ).scalar()
    finally:
        await engine.dispose()
    assert version == "0006"
