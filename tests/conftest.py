"""Shared fixtures: real NATS and Postgres started by the test setup, in temp folders, free ports.

- `postgres` (session): one Postgres server for the run; `database_url` gives each test its
  own fresh database on it.
- `nats_url` (function): a fresh JetStream-enabled NATS server per test, so streams and
  durable consumers never leak between tests.
- `seaweed`, `storage_settings`, `object_store`: S3 on SeaweedFS (tests/storage_fixtures.py),
  started only for the tests that use them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from genbus.devstack.nats import NatsServer
from genbus.devstack.postgres import PostgresServer
from tests.storage_fixtures import object_store, seaweed, storage_settings

__all__ = ["object_store", "seaweed", "storage_settings"]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg") / "data", fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def database_url(postgres: PostgresServer) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield postgres.dsn_for(name)
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.figures import FIGURES

    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
