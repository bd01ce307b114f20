"""The running system: every service its own OS process on real NATS, Postgres and the sim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from genbus.devstack.nats import NatsServer
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import DEFAULT_ACCOUNTS, AccountSeed, GenbusSystem, SystemConfig

TERMINAL = {"completed", "failed", "cancelled"}


#: The api acts as its local user: these tests are about the pipeline, not API keys (the old
#: system's calls carry no key either).
ANONYMOUS_API = {"GENBUS_API_ALLOW_ANONYMOUS": "true"}


@contextmanager
def running_system(
    base: Path,
    postgres: PostgresServer,
    sim_env: Mapping[str, str],
    accounts: tuple[AccountSeed, ...] = DEFAULT_ACCOUNTS,
) -> Iterator[GenbusSystem]:
    """Every service started on a NATS of its own and a fresh database on the shared Postgres."""
    nats = NatsServer(base / "nats", log_path=base / "nats.log")
    nats.start()
    database = f"e2e_{base.name.replace('-', '_')}"
    postgres.create_database(database)
    genbus = GenbusSystem(
        SystemConfig(
            base_dir=base,
            nats_url=nats.url,
            database_url=postgres.dsn_for(database),
            sim_env=dict(sim_env),
            log_to_files=True,
            log_format="json",
            extra_env=dict(ANONYMOUS_API),
            accounts=accounts,
            nats_security=nats.security,
        )
    )
    try:
        genbus.start()
        yield genbus
    finally:
        genbus.stop()
        nats.stop()


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[GenbusSystem]:
    sim_env = {"SIM_DURATION_S": "0.2", "SIM_DURATION_JITTER_S": "0"}
    with running_system(tmp_path_factory.mktemp("system"), postgres, sim_env) as genbus:
        yield genbus


@contextmanager
def admin_client(system: GenbusSystem) -> Iterator[httpx.Client]:
    """The dispatcher's admin API, with the system's admin token."""
    headers = {"Authorization": f"Bearer {system.config.admin_token}"}
    with httpx.Client(base_url=system.admin_url, headers=headers, timeout=10.0) as client:
        yield client


@pytest.fixture
def admin(system: GenbusSystem) -> Iterator[httpx.Client]:
    with admin_client(system) as client:
        yield client


@pytest.fixture
def api(system: GenbusSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.api_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def sim(system: GenbusSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.sim_url, timeout=10.0) as client:
        client.post("/_sim/reset")
        yield client
        client.put("/_sim/config", json={"fail_rate": 0.0, "moderation_rate": 0.0})


def wait_for(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    """Call `probe` until `done(result)`; fail with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    result = probe()
    while not done(result):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last: {result!r}")
        time.sleep(0.05)
        result = probe()
    return result


def wait_terminal(api: httpx.Client, path: str, timeout: float = 30.0) -> dict[str, Any]:
    body: dict[str, Any] = wait_for(
        lambda: api.get(path).json(), lambda b: b.get("status") in TERMINAL, timeout
    )
    return body


def post_generation(client: httpx.Client, prompt: str, **fields: Any) -> dict[str, Any]:
    """A text-to-video generation of the sim (with any other `fields` of the request body),
    created (201) by `client`'s key."""
    body = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": prompt}}
    response = client.post("/api/v1/generations", json={**body, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def api_cli(system: GenbusSystem, *args: str) -> Any:
    """`genbus-api ARGS` against the running system (its own settings); its JSON output."""
    result = subprocess.run(
        [sys.executable, "-m", "genbus.api", *args],
        env={**os.environ, **system.service_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
