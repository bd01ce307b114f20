"""Lost, late and slow answers over real HTTP: what a client sees from the sim under uvicorn."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.waiting import eventually

from .helpers import sim_process

KEY = {"Authorization": "Bearer proc-key"}
TEXT = "/openapi/v2/video/text/generate"
LOST_ANSWER_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with sim_process(SIM_KEYS="proc-key", SIM_DURATION_S="60") as server:
        yield server


@pytest.fixture
async def client(server: tuple[str, subprocess.Popen[bytes]]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as client:
        assert (await client.post("/_sim/reset")).status_code == 200
        knobs = {"submit_latency_ms": 0, "accepted_response_delay_ms": 0, "lost_response_rate": 0}
        assert (await client.put("/_sim/config", json=knobs)).status_code == 200
        yield client


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/_sim/stats")).json()
    return body


async def stats_when(
    client: httpx.AsyncClient, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    return await eventually(lambda: stats(client), done, timeout=10.0)


async def found(client: httpx.AsyncClient, reference: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/jobs", params={"client_reference": reference}, headers=KEY)
    assert response.status_code == 200
    jobs: list[dict[str, Any]] = response.json()["data"]
    return jobs


def native_body(prompt: str, reference: str) -> dict[str, Any]:
    return {"operation": "text_to_video", "prompt": prompt, "client_reference": reference}


@pytest.mark.parametrize(
    ("prompt", "knobs"),
    [("a [lose-response] cat", {}), ("a cat", {"lost_response_rate": 1.0})],
)
async def test_a_lost_native_answer_is_a_transport_error_after_the_job_exists(
    client: httpx.AsyncClient, prompt: str, knobs: dict[str, Any]
) -> None:
    await client.put("/_sim/config", json=knobs)

    with pytest.raises(LOST_ANSWER_ERRORS):
        await client.post("/v1/jobs", json=native_body(prompt, "gen-1"), headers=KEY)

    assert [job["status"] for job in await found(client, "gen-1")] == ["queued"]
    after = await stats(client)
    assert (after["submissions"], after["lost_responses"]) == (1, 1)
    assert after["submits_in_progress"] == 0


async def test_a_lost_pixverse_answer_is_a_transport_error_after_the_job_exists(
    client: httpx.AsyncClient,
) -> None:
    trace_id = str(uuid4())
    body = {"prompt": "[lose-response]", "model": "v4.5", "quality": "720p", "duration": 5}

    with pytest.raises(LOST_ANSWER_ERRORS):
        await client.post(
            TEXT,
            json={**body, "aspect_ratio": "16:9"},
            headers={"API-KEY": "proc-key", "Ai-trace-id": trace_id},
        )

    assert len(await found(client, trace_id)) == 1
    after = await stats(client)
    assert (after["submissions"], after["lost_responses"]) == (1, 1)


async def test_the_same_key_retried_after_a_lost_answer_gets_the_job(
    client: httpx.AsyncClient,
) -> None:
    headers = {**KEY, "Idempotency-Key": "gen-2:1"}
    body = native_body("[lose-response]", "gen-2")

    with pytest.raises(LOST_ANSWER_ERRORS):
        await client.post("/v1/jobs", json=body, headers=headers)
    retry = await client.post("/v1/jobs", json=body, headers=headers)

    assert retry.status_code == 200
    assert [job["id"] for job in await found(client, "gen-2")] == [retry.json()["id"]]
    assert (await stats(client))["submissions"] == 1


async def test_a_client_timing_out_on_a_late_answer_leaves_a_job(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/_sim/config", json={"accepted_response_delay_ms": 1000})

    with pytest.raises(httpx.ReadTimeout):
        await client.post("/v1/jobs", json=native_body("a cat", "gen-3"), headers=KEY, timeout=0.2)

    assert len(await found(client, "gen-3")) == 1
    after = await stats_when(client, lambda s: s["submits_in_progress"] == 0)
    assert (after["submissions"], after["delayed_responses"], after["lost_responses"]) == (1, 1, 0)


async def test_a_client_gone_during_the_submit_latency_still_gets_a_job_made(
    client: httpx.AsyncClient, server: tuple[str, subprocess.Popen[bytes]]
) -> None:
    await client.put("/_sim/config", json={"submit_latency_ms": 1000})

    async with httpx.AsyncClient(base_url=server[0], timeout=10) as doomed:
        task = asyncio.create_task(
            doomed.post("/v1/jobs", json=native_body("a cat", "gen-4"), headers=KEY)
        )
        during = await stats_when(client, lambda s: s["submits_in_progress"] == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert during["submissions"] == 0
    after = await stats_when(client, lambda s: s["submits_in_progress"] == 0)
    assert after["submissions"] == 1
    assert len(await found(client, "gen-4")) == 1
