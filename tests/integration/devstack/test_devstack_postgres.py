from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from genbus.devstack import PostgresServer
from genbus.devstack.processes import descendants, pid_alive

pytestmark = pytest.mark.integration


def server_pids(server: PostgresServer) -> set[int]:
    assert server.pid is not None
    return {server.pid} | descendants(server.pid)


async def test_committed_row_survives_sigkill(base_dir: Path) -> None:
    server = PostgresServer(base_dir / "pg")  # durable defaults: fsync and synchronous_commit on
    await asyncio.to_thread(server.start)
    assert server.dsn == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        await conn.execute("INSERT INTO t VALUES (1, 'kept')")
        crashed = server_pids(server)
        assert len(crashed) > 1  # postmaster + its children

        await asyncio.to_thread(server.kill)  # clients still connected: a real crash
        assert not any(pid_alive(pid) for pid in crashed)
    finally:
        conn.terminate()

    await asyncio.to_thread(server.start)  # crash recovery replays the WAL
    conn = await asyncpg.connect(server.dsn)
    try:
        assert await conn.fetchval("SELECT v FROM t WHERE id = 1") == "kept"
        running = server_pids(server)
    finally:
        await conn.close()
        await asyncio.to_thread(server.stop)
    assert not any(pid_alive(pid) for pid in running)
    assert "database system was interrupted" in (base_dir / "pg.log").read_text()


async def test_fast_settings_and_create_database(base_dir: Path) -> None:
    server = PostgresServer(base_dir / "pg", fast=True)
    await asyncio.to_thread(server.start)
    try:
        dsn = server.create_database("genbus_test")
        assert server.create_database("genbus_test") == dsn  # idempotent
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT current_database()") == "genbus_test"
            assert await conn.fetchval("SHOW fsync") == "off"
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
            assert await conn.fetchval("SHOW max_connections") == "200"
        finally:
            await conn.close()
        with pytest.raises(ValueError, match="unsupported database name"):
            server.create_database('x"; DROP DATABASE postgres; --')
        pids = server_pids(server)
    finally:
        await asyncio.to_thread(server.stop)
    assert not any(pid_alive(pid) for pid in pids)
