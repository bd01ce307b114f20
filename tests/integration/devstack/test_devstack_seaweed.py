"""`make run`'s S3 server: SeaweedFS from the wheel, secret and objects kept across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from genbus.devstack.seaweed import local_object_store
from genbus.storage import ObjectStore, StorageError

pytestmark = pytest.mark.integration


async def test_local_object_store_keeps_objects_and_secret_across_restarts(tmp_path: Path) -> None:
    server = local_object_store(tmp_path)
    server.start()
    try:
        env = server.env()
        assert env["GENBUS_S3_ENDPOINT_URL"] == server.endpoint_url
        assert env["GENBUS_S3_SECRET_ACCESS_KEY"] == (tmp_path / "s3.secret").read_text().strip()
        assert (tmp_path / "s3.secret").stat().st_mode & 0o777 == 0o600
        settings = server.settings().model_copy(update={"max_attempts": 1})
        async with ObjectStore(settings) as store:
            await store.put_bytes("kept", b"still here", content_type="text/plain")
            server.stop()
            with pytest.raises(StorageError):
                await store.head("kept")
            server.start()
            async with await store.get("kept") as body:
                assert await body.read() == b"still here"
    finally:
        server.stop()

    again = local_object_store(tmp_path)
    assert again.secret_key == server.secret_key
