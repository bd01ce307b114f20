"""Shared fixtures: real NATS and Postgres started by the test setup, in temp folders, free ports.

- `postgres` (session): one Postgres server for the run; `database_url` gives each test its
  own fresh database on it.
- `nats_url` (function): a fresh JetStream-enabled NATS server per test, so streams and
  durable consumers never leak between tests. Like every server of the run it has TLS and the
  users of `genbus.contracts.permissions` on (one CA and password set per run,
  `nats_security`); it is provisioned (streams, consumers, KV bucket) and the URL carries the
  privileged provisioner's credentials. Connect with `genbus.runtime.nats_client.connect_nats`
  (it trusts the run's CA via `GENBUS_NATS_TLS_CA`); a service's user: `nats_server.url_for`.
- `seaweed`, `storage_settings`, `object_store`: S3 on SeaweedFS (tests/storage_fixtures.py),
  started only for the tests that use them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from genbus.contracts.permissions import PROVISIONER
from genbus.devstack.nats import NatsSecurity, NatsServer
from genbus.devstack.nats_security import PKI_DIR_ENV
from genbus.devstack.postgres import PostgresServer
from genbus.runtime.nats_client import NatsAccess
from genbus.runtime.provision import provision_blocking
from tests.storage_fixtures import object_store, seaweed, storage_settings

__all__ = ["object_store", "seaweed", "storage_settings"]


@pytest.fixture(scope="session", autouse=True)
def nats_security(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsSecurity]:
    """One CA and password set for every NATS server of the run (also the harnesses' and
    subprocesses'), trusted by every client of this process."""
    directory = tmp_path_factory.mktemp("nats-pki")
    security = NatsSecurity.ensure(directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PKI_DIR_ENV, str(directory))
        patch.setenv("GENBUS_NATS_TLS_CA", str(security.tls.ca_file))
        yield security


def provision_server(server: NatsServer, replicas: int = 1) -> None:
    """Streams, consumers and the KV bucket on `server`, as the provisioner."""
    assert server.security is not None
    access = NatsAccess(
        (server.url,),
        PROVISIONER,
        server.security.password(PROVISIONER),
        str(server.security.tls.ca_file),
    )
    provision_blocking(access, replicas)


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
        provision_server(server)
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.admin_url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.figures import FIGURES

    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
