"""Outputs that outlive the provider, on the running system with S3 (SeaweedFS): the copy is
served by genbus, survives the sim forgetting its files, and goes with its generation."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genbus.devstack.nats import NatsServer
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.seaweed import SeaweedServer
from genbus.devstack.system import GenbusSystem, SystemConfig
from genbus.storage import ObjectStore, StorageSettings
from tests.e2e.conftest import ANONYMOUS_API, wait_for, wait_terminal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def archiving_system(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    seaweed_bucket: StorageSettings,
) -> Iterator[GenbusSystem]:
    base: Path = tmp_path_factory.mktemp("assets-system")
    nats = NatsServer(base / "nats", log_path=base / "nats.log")
    nats.start()
    database = f"e2e_{base.name.replace('-', '_')}"
    postgres.create_database(database)
    system = GenbusSystem(
        SystemConfig(
            base_dir=base,
            nats_url=nats.url,
            database_url=postgres.dsn_for(database),
            sim_env={"SIM_DURATION_S": "0.2", "SIM_DURATION_JITTER_S": "0"},
            log_to_files=True,
            log_format="json",
            extra_env={
                **ANONYMOUS_API,
                **seaweed_bucket.as_env(),
                "GENBUS_API_ARCHIVE_ENABLED": "true",
                "GENBUS_API_ARCHIVE_ALLOW_NETWORKS": "127.0.0.0/8",
                "GENBUS_API_ARCHIVE_INTERVAL_S": "0.2",
            },
            replicas={"api": 1, "dispatcher": 1, "poller": 1},
            nats_security=nats.security,
        )
    )
    try:
        system.start()
        yield system
    finally:
        system.stop()
        nats.stop()


@pytest.fixture(scope="module")
def seaweed_bucket(seaweed: SeaweedServer) -> StorageSettings:
    settings = seaweed.settings().model_copy(update={"bucket": "e2e-assets"})

    async def create() -> None:
        async with ObjectStore(settings) as store:
            await store.ensure_bucket()

    asyncio.run(create())
    return settings


def _head(settings: StorageSettings, key: str) -> object:
    async def head() -> object:
        async with ObjectStore(settings) as store:
            return await store.head(key)

    return asyncio.run(head())


def test_output_is_served_by_genbus_after_the_provider_forgets_it(
    archiving_system: GenbusSystem, seaweed_bucket: StorageSettings
) -> None:
    with (
        httpx.Client(base_url=archiving_system.api_url, timeout=10.0) as api,
        httpx.Client(base_url=archiving_system.sim_url, timeout=10.0) as sim,
    ):
        created = api.post(
            "/api/v1/generations",
            json={
                "operation_type": "text_to_video",
                "provider_id": "sim",
                "params": {"prompt": "p"},
            },
        )
        assert created.status_code == 201, created.text
        gid = created.json()["id"]
        done = wait_terminal(api, f"/api/v1/generations/{gid}")
        assert done["status"] == "completed", done
        provider_url = done["asset"]["url"]
        original = sim.get(provider_url)
        assert original.status_code == 200

        path = f"/api/v1/generations/{gid}/asset"
        served = wait_for(lambda: api.get(path), lambda r: r.status_code == 200, timeout=60)
        assert served.content == original.content
        assert served.headers["etag"] == f'"{hashlib.sha256(original.content).hexdigest()}"'

        sim.post("/_sim/reset")
        assert sim.get(provider_url).status_code == 404
        again = api.get(path)
        assert again.status_code == 200
        assert hashlib.sha256(again.content).digest() == hashlib.sha256(original.content).digest()

        assert api.delete(f"/api/v1/generations/{gid}").status_code == 204
        assert api.get(path).status_code == 404
        key = f"generations/{gid}/0"
        wait_for(lambda: _head(seaweed_bucket, key), lambda info: info is None, timeout=30)
