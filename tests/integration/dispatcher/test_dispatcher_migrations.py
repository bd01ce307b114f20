"""The dispatcher's hand-written migrations create exactly what its tables declare."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData
from sqlmodel import SQLModel

from genbus.dispatcher.adapters.tables import SCHEMA
from genbus.dispatcher.entrypoints.cli import MIGRATIONS
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
    # SQLModel's metadata is shared: other services' tables may be registered in this process.
    ours = MetaData()
    for table in SQLModel.metadata.tables.values():
        if table.schema == SCHEMA:
            table.to_metadata(ours)
    return list(compare_metadata(context, ours))


async def test_migrations_match_the_tables(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, database_url, SCHEMA)
    await asyncio.to_thread(upgrade_to_head, MIGRATIONS, database_url, SCHEMA)  # a no-op
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            version = (
                await conn.exec_driver_sql("SELECT version_num FROM dispatcher.alembic_version")
            ).scalar()
    finally:
        await engine.dispose()
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    assert version == head
