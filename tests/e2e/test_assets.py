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
            sim_env={
                "SIM_DURATION_S": "0.2",
                "SIM_DURATION_JITTER_S": "0",
                # The sim downloads the inputs a job names, as a provider does.
                "SIM_FETCH_INPUTS": "true",
            },
            log_to_files=True,
            log_format="json",
            extra_env={
                **ANONYMOUS_API,
                **seaweed_bucket.as_env(),
                "GENBUS_API_ARCHIVE_ENABLED": "true",
                "GENBUS_API_ARCHIVE_ALLOW_NETWORKS": "127.0.0.0/8",
                "GENBUS_API_ARCHIVE_INTERVAL_S": "0.2",
                "GENBUS_API_UPLOAD_ENABLED": "true",
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
        provider_url = done["asset"]["provider_url"]
        assert provider_url.startswith(archiving_system.sim_url)
        original = sim.get(provider_url)
        assert original.status_code == 200

        # The generation's own asset URL becomes genbus's route, not the provider's.
        path = f"/api/v1/generations/{gid}/asset"
        stored = wait_for(
            lambda: api.get(f"/api/v1/generations/{gid}").json()["asset"],
            lambda asset: asset["stored"],
            timeout=60,
        )
        assert (stored["url"], stored["expires"]) == (path, False)
        digest = hashlib.sha256(original.content).hexdigest()
        assert stored["sha256"] == digest
        served = api.get(stored["url"])
        assert served.status_code == 200
        assert served.content == original.content
        assert served.headers["etag"] == f'"{digest}"'

        sim.post("/_sim/reset")
        assert sim.get(provider_url).status_code == 404
        again = api.get(path)
        assert again.status_code == 200
        assert hashlib.sha256(again.content).hexdigest() == digest

        # After the provider forgot it, the output still works as another generation's input:
        # the provider gets a presigned URL of genbus's copy, and it answers with the bytes.
        follow_up = _create_and_finish(api, {"role": "image", "generation_id": gid})
        [fetched] = _fetched_inputs(sim, follow_up["canonical_inputs"][0]["url"])
        assert (fetched["status"], fetched["sha256"]) == (200, digest)

        assert api.delete(f"/api/v1/generations/{gid}").status_code == 204
        assert api.get(path).status_code == 404
        key = f"generations/{gid}/0"
        wait_for(lambda: _head(seaweed_bucket, key), lambda info: info is None, timeout=30)


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _create_and_finish(api: httpx.Client, image: dict[str, str]) -> dict[str, object]:
    created = api.post(
        "/api/v1/generations",
        json={
            "operation_type": "image_to_video",
            "provider_id": "sim",
            "params": {"prompt": "it moves"},
            "inputs": [image],
        },
    )
    assert created.status_code == 201, created.text
    done = wait_terminal(api, f"/api/v1/generations/{created.json()['id']}")
    assert done["status"] == "completed", done
    return done


def _fetched_inputs(sim: httpx.Client, url: str) -> list[dict[str, object]]:
    records: list[dict[str, object]] = sim.get("/_sim/inputs").json()["data"]
    return [r for r in records if r["url"] == url]


def test_an_upload_reaches_the_provider_as_a_url_that_works(archiving_system: GenbusSystem) -> None:
    with (
        httpx.Client(base_url=archiving_system.api_url, timeout=10.0) as api,
        httpx.Client(base_url=archiving_system.sim_url, timeout=10.0) as sim,
    ):
        uploaded = api.post("/api/v1/uploads", content=PNG, headers={"content-type": "image/png"})
        assert uploaded.status_code == 201, uploaded.text
        upload = uploaded.json()
        assert upload["media_type"] == "image/png"

        done = _create_and_finish(api, {"role": "image", "upload_id": upload["id"]})
        [given] = done["canonical_inputs"]  # type: ignore[misc]
        assert not given["url"].startswith(archiving_system.api_url)
        [fetched] = _fetched_inputs(sim, given["url"])
        assert fetched["status"] == 200
        assert fetched["sha256"] == hashlib.sha256(PNG).hexdigest() == upload["sha256"]

        assert api.delete(f"/api/v1/uploads/{upload['id']}").status_code == 204
        assert httpx.get(given["url"]).status_code == 404
