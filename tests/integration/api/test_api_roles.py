"""Where the api's event consumers run: on an event loop of their own in the HTTP process
(`GENBUS_API_ROLE=all`), so a saturated HTTP loop never delays them; or as a process of their
own (`genbus-api consumers`) beside HTTP-only replicas (`GENBUS_API_ROLE=http`)."""

from __future__ import annotations

import asyncio
import threading
import time
from uuid import UUID

import asyncpg
import pytest
from api_harness import Api, completed_event

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.consumers_process import run_consumers
from genbus.contracts import COMPLETED

pytestmark = pytest.mark.integration

T2V = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}}


def _status_seen_from_another_thread(database_url: str, generation_id: str, wanted: str) -> bool:
    """Polls the row from a thread of its own (the caller's loop stays blocked meanwhile)."""

    async def poll() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                status = await conn.fetchval(
                    "SELECT status FROM api.generations WHERE id = $1", UUID(generation_id)
                )
                if status == wanted:
                    return True
                await asyncio.sleep(0.05)
            return False
        finally:
            await conn.close()

    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(asyncio.run(poll())))
    thread.start()
    thread.join()
    return seen == [True]


async def test_consumers_keep_up_while_the_http_loop_is_saturated(api: Api) -> None:
    assert api.runtime.settings.role == "all"
    generation = await api.create(**T2V)
    await api.publish(COMPLETED, completed_event(generation))
    # The HTTP loop is blocked outright (as by a burst of requests) until the completion is
    # projected: only consumers on a loop of their own can project it meanwhile.
    started = time.monotonic()
    assert _status_seen_from_another_thread(api.database_url, generation["id"], "completed")
    print(f"\nprojected while the HTTP loop was blocked: {time.monotonic() - started:.2f} s")


class TestHttpOnly:
    @pytest.fixture
    def api_settings(self, api_settings: ApiSettings) -> ApiSettings:
        return api_settings.model_copy(update={"role": "http"})

    async def test_an_http_replica_leaves_events_to_the_consumers_process(self, api: Api) -> None:
        assert api.runtime.consumers is None
        generation = await api.create(**T2V)
        await api.publish(COMPLETED, completed_event(generation))
        # Nobody consumes on the HTTP side: the completion waits for the consumers.
        assert (await api.get(generation["id"]))["status"] == "pending"

        stop = asyncio.Event()
        settings = api.runtime.settings.model_copy(update={"role": "consumers"})
        consumers = asyncio.create_task(run_consumers(settings, stop))
        try:
            done = await api.wait_status(generation["id"], "completed")
            assert done["status"] == "completed"
        finally:
            stop.set()
            await asyncio.wait_for(consumers, 30)
