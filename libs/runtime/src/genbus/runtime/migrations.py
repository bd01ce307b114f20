"""Alembic, run programmatically: each service migrates its own schema, own version table."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from genbus.runtime.db import DbTimeouts, create_engine


def alembic_config(script_location: Path, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["genbus_schema"] = schema
    return config


def upgrade_to_head(script_location: Path, database_url: str, schema: str) -> None:
    """Migrate `schema` to the latest revision (safe to run from several replicas at once)."""
    command.upgrade(alembic_config(script_location, database_url, schema), "head")


def run_env(metadata: MetaData) -> None:
    """The body of every service's alembic `env.py`: online, async, schema-scoped migrations."""
    config = context.config
    schema: str = config.attributes["genbus_schema"]
    url = config.get_main_option("sqlalchemy.url") or ""

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
        )
        with context.begin_transaction():
            # Serialises concurrent start-ups of several replicas of the same service.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            context.run_migrations()

    async def run_async() -> None:
        # No statement or lock bound: DDL may take long, and a replica waits on purpose for
        # another's migration (the advisory lock below).
        engine = create_engine(url, pool_size=1, max_overflow=0, timeouts=DbTimeouts.unbounded())
        try:
            async with engine.connect() as conn:
                # Under the same lock: two replicas creating the schema at once would collide
                # (IF NOT EXISTS does not serialise them in Postgres).
                lock = text("SELECT pg_advisory_xact_lock(hashtext(:s))")
                await conn.execute(lock, {"s": schema})
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                await conn.commit()
                await conn.run_sync(do_run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())
