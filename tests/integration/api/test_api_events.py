"""Live status over Server-Sent Events, through real HTTP: order, end at the terminal state,
resume with Last-Event-ID, per-user scoping, and changes made by another replica."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest
from api_harness import (
    Api,
    LiveApi,
    SseEvent,
    completed_event,
    served,
    sse_events,
    submitted_event,
)

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.contracts import COMPLETED, SUBMITTED

pytestmark = pytest.mark.integration

T2V = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}}


class Stream:
    """An open SSE response and its events, read in the background."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: asyncio.Queue[SseEvent | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in sse_events(self.response):
                await self.events.put(event)
        finally:
            await self.events.put(None)  # the server closed the stream

    async def next(self, timeout: float = 10.0) -> SseEvent | None:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def take(self, count: int, timeout: float = 10.0) -> list[SseEvent]:
        events = []
        for _ in range(count):
            event = await self.next(timeout)
            assert event is not None, f"stream closed after {events}"
            events.append(event)
        return events

    async def assert_quiet(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            event = await asyncio.wait_for(self.events.get(), seconds)
            raise AssertionError(f"unexpected event {event}")

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task
        await self.response.aclose()


@contextlib.asynccontextmanager
async def stream(
    client: httpx.AsyncClient, path: str, last_event_id: str | None = None
) -> AsyncIterator[Stream]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        opened = Stream(response)
        try:
            yield opened
        finally:
            await opened.close()


@pytest.fixture
async def client(live_api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with live_api.client(live_api.api.key) as c:
        yield c


async def test_a_generation_stream_delivers_each_change_in_order_then_ends(
    api: Api, client: httpx.AsyncClient
) -> None:
    created = await api.create(**T2V)
    async with stream(client, f"/api/v1/generations/{created['id']}/events") as s:
        (first,) = await s.take(1)
        assert (first.event, first.data["status"]) == ("generation", "pending")
        assert first.data == {**created, "updated_at": first.data["updated_at"]}
        assert first.data["wait_reason"] == "waiting_for_account"

        await api.publish(SUBMITTED, submitted_event(created))
        (second,) = await s.take(1)
        assert second.data["status"] == "processing"
        assert second.data["wait_reason"] is None

        await api.publish(COMPLETED, completed_event(created))
        (third,) = await s.take(1)
        assert third.data["status"] == "completed"
        assert third.data["asset"]["url"]
        assert await s.next() is None  # the stream ended at the terminal state

    ids = [int(e.id or 0) for e in (first, second, third)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    rows = await api.fetch(
        "SELECT id, status FROM api.generation_events WHERE generation_id = $1 ORDER BY id",
        UUID(created["id"]),
    )
    assert [(r["id"], r["status"]) for r in rows] == list(
        zip(ids, ["pending", "processing", "completed"], strict=True)
    )


async def test_reconnecting_with_last_event_id_resumes_without_loss_or_repeats(
    api: Api, client: httpx.AsyncClient
) -> None:
    created = await api.create(**T2V)
    path = f"/api/v1/generations/{created['id']}/events"
    async with stream(client, path) as s:
        (pending,) = await s.take(1)
    # Disconnected: changes happen meanwhile.
    await api.publish(SUBMITTED, submitted_event(created))
    await api.wait_status(created["id"], "processing")

    async with stream(client, path, last_event_id=pending.id) as s:
        (processing,) = await s.take(1)
        assert processing.data["status"] == "processing"
        await api.publish(COMPLETED, completed_event(created, "failed"))
        (failed,) = await s.take(1)
        assert failed.data["status"] == "failed"
        assert await s.next() is None

    # Whole history again without Last-Event-ID; after the terminal one, nothing: 204.
    async with stream(client, path) as s:
        assert [e.data["status"] for e in await s.take(3)] == ["pending", "processing", "failed"]
        assert await s.next() is None
    again = await client.get(path, headers={"Last-Event-ID": failed.id or ""})
    assert again.status_code == 204


async def test_the_user_stream_carries_all_and_only_the_callers_changes(
    api: Api, live_api: LiveApi, client: httpx.AsyncClient
) -> None:
    async with (
        live_api.client(await api.new_key("mallory")) as mallory,
        stream(client, "/api/v1/events") as mine,
        stream(mallory, "/api/v1/events") as theirs,
    ):
        await asyncio.sleep(0.2)  # both streams have read their starting point
        first = await api.create(**T2V)
        second = await api.create(**T2V)
        await api.publish(SUBMITTED, submitted_event(first))
        events = await mine.take(3)
        assert [(e.data["id"], e.data["status"]) for e in events] == [
            (first["id"], "pending"),
            (second["id"], "pending"),
            (first["id"], "processing"),
        ]
        await theirs.assert_quiet(1.0)

        # Resume after the second event: exactly the third again, then what follows.
        async with stream(client, "/api/v1/events", last_event_id=events[1].id) as resumed:
            (again,) = await resumed.take(1)
            assert again.id == events[2].id
            response = await client.post(f"/api/v1/generations/{second['id']}/cancel")
            assert response.status_code == 200
            (cancelled,) = await resumed.take(1)
            assert (cancelled.data["id"], cancelled.data["status"]) == (second["id"], "cancelled")
        (cancelled_too,) = await mine.take(1)
        assert cancelled_too.id == cancelled.id

        deleted = await client.delete(f"/api/v1/generations/{second['id']}")
        assert deleted.status_code == 204
        (gone,) = await mine.take(1)
        assert gone.event == "generation.deleted"
        assert gone.data["id"] == second["id"]
        await theirs.assert_quiet(0.5)


async def test_another_users_generation_cannot_be_streamed(api: Api, live_api: LiveApi) -> None:
    created = await api.create(**T2V)
    async with live_api.client(await api.new_key("mallory")) as mallory:
        response = await mallory.get(f"/api/v1/generations/{created['id']}/events")
    assert response.status_code == 404
    assert response.json()["code"] == "generation_not_found"


async def test_a_stream_sees_changes_another_replica_processed(
    api: Api, api_settings: ApiSettings
) -> None:
    """Replica B serves the stream with a catch-up read far too slow for this test: only the
    NATS notification from replica A (the `api` app, which makes the change) delivers it."""
    replica_b = create_app(api_settings.model_copy(update={"sse_catch_up_s": 60.0}))
    async with replica_b.router.lifespan_context(replica_b), served(replica_b) as url_b:
        created = await api.create(**T2V)
        async with (
            httpx.AsyncClient(
                base_url=url_b, headers={"Authorization": f"Bearer {api.key}"}, timeout=15.0
            ) as b,
            stream(b, f"/api/v1/generations/{created['id']}/events") as s,
        ):
            (pending,) = await s.take(1)
            assert pending.data["status"] == "pending"
            cancel = await api.client.post(f"/api/v1/generations/{created['id']}/cancel")
            assert cancel.status_code == 200
            (cancelled,) = await s.take(1, timeout=5.0)
            assert cancelled.data["status"] == "cancelled"
            assert await s.next() is None


async def test_a_pending_generations_stream_tells_its_queue_position_as_it_changes(
    api: Api, client: httpx.AsyncClient
) -> None:
    ahead = [await api.create(**T2V) for _ in range(2)]
    waiting = await api.create(**T2V)
    path = f"/api/v1/generations/{waiting['id']}/events?queue=true"
    async with stream(client, path) as s:
        seen = await s.take(2)
        queue = [e for e in seen if e.event == "queue"]
        assert [e.data["queue_position"] for e in queue] == [2]
        assert queue[0].id is None  # resuming follows the changes only
        assert queue[0].data["id"] == waiting["id"]
        # The ones ahead start: its position goes down (read by the user's shared feed, woken
        # by the user's changes), each new position once.
        for n, generation in enumerate(ahead):
            await api.publish(SUBMITTED, submitted_event(generation, provider_job_id=f"j{n}"))
            (update,) = await s.take(1)
            assert (update.event, update.data["queue_position"]) == ("queue", 1 - n)
        await api.publish(SUBMITTED, submitted_event(waiting, provider_job_id="j-w"))
        (started,) = await s.take(1)
        assert (started.event, started.data["status"]) == ("generation", "processing")
        await api.publish(COMPLETED, completed_event(waiting))
        (ended,) = await s.take(1)
        assert ended.data["status"] == "completed"
        assert await s.next() is None
