"""Steady under overload, against real Postgres and NATS: admission control refuses new
generations past the backlog bound (429 `overloaded`, quickly, writing nothing) while reads,
cancels and replays are served; live-status streams are capped per key and per replica."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_harness import Api, LiveApi, eventually
from prometheus_client import REGISTRY

from genbus.api.config import ApiSettings

pytestmark = pytest.mark.integration

T2V = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}}
GENERATIONS = "/api/v1/generations"


@pytest.fixture
def api_settings(api_settings: ApiSettings) -> ApiSettings:
    return api_settings.model_copy(
        update={
            "max_pending_generations": 3,
            "admission_refresh_s": 0.1,
            "max_streams_per_key": 2,
            "max_streams_per_replica": 3,
        }
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def estimate_read(api: Api) -> None:
    await eventually(
        lambda: _value(api.runtime.admission.has_estimate), lambda ready: ready, timeout=10.0
    )


async def _value(value: Any) -> Any:
    return value


def assert_overloaded(response: httpx.Response, code: str = "overloaded") -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_past_the_bound_new_generations_are_refused_and_reads_still_served(
    api: Api,
) -> None:
    await estimate_read(api)
    first, _, _ = [await api.create(**T2V) for _ in range(3)]
    refused_before = sample("genbus_api_admission_refusals_total", reason="pending")

    assert_overloaded(await api.client.post(GENERATIONS, json=T2V))
    assert_overloaded(await api.client.post("/api/v1/jobs", json=T2V))  # the legacy alias
    assert await api.count("generations") == 3  # nothing written
    assert await api.count("outbox") == 3
    assert sample("genbus_api_admission_refusals_total", reason="pending") == refused_before + 2

    listed = await api.client.get(GENERATIONS)
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 3
    assert (await api.client.get(f"{GENERATIONS}/{first['id']}")).status_code == 200
    await eventually(lambda: _value(sample("genbus_api_backlog", kind="pending")), lambda n: n == 3)
    assert sample("genbus_api_backlog_limit", kind="pending") == 3

    # Cancels are served; once the backlog is read below the bound, creating works again.
    cancel = await api.client.post(f"{GENERATIONS}/{first['id']}/cancel")
    assert cancel.status_code == 200

    async def post() -> httpx.Response:
        return await api.client.post(GENERATIONS, json=T2V)

    accepted = await eventually(post, lambda r: r.status_code != 429, timeout=10.0)
    assert accepted.status_code == 201, accepted.text
    # At the bound again: a retry (which creates a generation) is refused too.
    assert_overloaded(await api.client.post(f"{GENERATIONS}/{first['id']}/retry"))
    assert await api.count("generations") == 4


async def test_an_idempotent_replay_of_an_accepted_request_is_never_refused(api: Api) -> None:
    await estimate_read(api)
    key = {"Idempotency-Key": "accepted-before-the-overload"}
    original = await api.client.post(GENERATIONS, json=T2V, headers=key)
    assert original.status_code == 201
    for _ in range(2):
        await api.create(**T2V)
    assert_overloaded(await api.client.post(GENERATIONS, json=T2V))

    replay = await api.client.post(GENERATIONS, json=T2V, headers=key)
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == original.json()["id"]
    # The same key with another body is still the conflict it always was, not a 429.
    other = await api.client.post(
        GENERATIONS, json={**T2V, "params": {"prompt": "other"}}, headers=key
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    # A new key names no accepted request: refused, and nothing is claimed.
    fresh = await api.client.post(GENERATIONS, json=T2V, headers={"Idempotency-Key": "new"})
    assert_overloaded(fresh)
    assert await api.count("generations") == 3
    assert await api.count("idempotency_keys") == 1


class TestOutboxBacklog:
    @pytest.fixture
    def api_settings(self, api_settings: ApiSettings) -> ApiSettings:
        return api_settings.model_copy(
            update={"max_pending_generations": 0, "max_outbox_backlog": 2}
        )

    async def test_unpublished_events_past_the_bound_refuse_new_generations(self, api: Api) -> None:
        runtime = api.runtime
        relay = runtime.relay
        assert relay is not None
        relay.stop()  # as if NATS were unreachable: nothing is published any more
        (task,) = [t for t in runtime._tasks if t.get_name() == "outbox-relay"]
        await eventually(lambda: _value(task.done()), lambda done: done)
        await estimate_read(api)
        for _ in range(2):
            await api.create(**T2V)
        refused_before = sample("genbus_api_admission_refusals_total", reason="outbox")
        assert_overloaded(await api.client.post(GENERATIONS, json=T2V))
        assert sample("genbus_api_admission_refusals_total", reason="outbox") == refused_before + 1

        assert await relay.relay_once() == 2  # published again: the backlog drains

        async def post() -> httpx.Response:
            return await api.client.post(GENERATIONS, json=T2V)

        accepted = await eventually(post, lambda r: r.status_code != 429, timeout=10.0)
        assert accepted.status_code == 201


class TestPerUserBacklog:
    @pytest.fixture
    def api_settings(self, api_settings: ApiSettings) -> ApiSettings:
        return api_settings.model_copy(
            update={"max_pending_generations": 100, "max_pending_per_user": 2}
        )

    async def test_one_users_backlog_does_not_refuse_another_user(self, api: Api) -> None:
        await estimate_read(api)
        for _ in range(2):
            await api.create(**T2V)
        assert_overloaded(await api.client.post(GENERATIONS, json=T2V), "too_many_pending")
        other = await api.client_as("someone-else")
        assert (await other.post(GENERATIONS, json=T2V)).status_code == 201


# -- live-status streams


@contextlib.asynccontextmanager
async def opened(client: httpx.AsyncClient, path: str) -> AsyncIterator[httpx.Response]:
    async with client.stream("GET", path) as response:
        assert response.status_code == 200, await response.aread()
        yield response


async def open_streams(api: Api) -> int:
    return api.runtime.streams.open


async def test_streams_are_capped_per_key_and_per_replica_and_slots_are_freed(
    api: Api, live_api: LiveApi
) -> None:
    mine = live_api.client(api.key)
    theirs = live_api.client(await api.new_key("bob"))
    third = live_api.client(await api.new_key("carol"))
    async with mine, theirs, third, contextlib.AsyncExitStack() as streams:
        first = await streams.enter_async_context(opened(mine, "/api/v1/events"))
        await streams.enter_async_context(opened(mine, "/api/v1/events"))
        refused_before = sample("genbus_api_sse_refusals_total", scope="key")
        refused = await mine.get("/api/v1/events")
        assert_overloaded(refused, "too_many_streams")
        assert sample("genbus_api_sse_refusals_total", scope="key") == refused_before + 1
        # Another key is not affected by this key's cap...
        await streams.enter_async_context(opened(theirs, "/api/v1/events"))
        assert api.runtime.streams.open == 3
        assert sample("genbus_api_sse_streams") == 3
        # ...but the replica's cap holds for everyone.
        assert_overloaded(await third.get("/api/v1/events"), "too_many_streams")

        # A client that goes away frees its slot, and the slot can be used again.
        await first.aclose()
        await eventually(lambda: open_streams(api), lambda n: n == 2)
        await streams.enter_async_context(opened(mine, "/api/v1/events"))
        assert_overloaded(await mine.get("/api/v1/events"), "too_many_streams")

    await eventually(lambda: open_streams(api), lambda n: n == 0)


async def test_a_stream_that_ends_or_is_refused_holds_no_slot(api: Api, live_api: LiveApi) -> None:
    created = await api.create(**T2V)
    path = f"{GENERATIONS}/{created['id']}/events"
    async with live_api.client(api.key) as client:
        async with opened(client, path):
            await eventually(lambda: open_streams(api), lambda n: n == 1)
            cancel = await api.client.post(f"{GENERATIONS}/{created['id']}/cancel")
            assert cancel.status_code == 200
            # The generation is terminal: its stream ends by itself, freeing its slot.
            await eventually(lambda: open_streams(api), lambda n: n == 0)
        # Answers that are no stream (404, 204) hold nothing either.
        missing = await client.get(f"{GENERATIONS}/00000000-0000-0000-0000-000000000000/events")
        assert missing.status_code == 404
        ended = await client.get(path, headers={"Last-Event-ID": str(2**62)})
        assert ended.status_code == 204
        assert api.runtime.streams.open == 0
        for _ in range(2):  # the key's whole allowance is still there
            async with opened(client, path) as replayed:
                await replayed.aread()  # its history, then the end
        assert api.runtime.streams.open == 0
