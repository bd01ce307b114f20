"""A slow or unreliable provider on purpose: submit latency, late answers, lost answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any
from uuid import uuid4

import httpx
import pytest
from starlette.types import Message

from tests.waiting import eventually

from .helpers import KEY1, MakeSim, Sim

TEXT = "/openapi/v2/video/text/generate"
IMG = "/openapi/v2/video/img/generate"
UPLOAD = "/openapi/v2/image/upload"
LONG_MS = 60_000  # never elapses in a test: the request is cancelled first
# A submit call; its int is the id of an image the key uploaded (for image-to-video).
Call = Callable[[Sim, int], Coroutine[Any, Any, httpx.Response]]


def pixverse_headers() -> dict[str, str]:
    return {"API-KEY": "sim-key-1", "Ai-trace-id": str(uuid4())}


def t2v_body(prompt: str = "a cat") -> dict[str, Any]:
    return {
        "prompt": prompt,
        "model": "v4.5",
        "quality": "720p",
        "duration": 5,
        "aspect_ratio": "1:1",
    }


async def native_submit(sim: Sim, _: int = 0) -> httpx.Response:
    return await sim.submit()


async def pixverse_text(sim: Sim, _: int = 0) -> httpx.Response:
    return await sim.client.post(TEXT, json=t2v_body(), headers=pixverse_headers())


async def pixverse_image(sim: Sim, img_id: int) -> httpx.Response:
    body = {"img_id": img_id, "model": "v4.5", "quality": "540p", "duration": 5}
    return await sim.client.post(IMG, json=body, headers=pixverse_headers())


async def pixverse_upload(sim: Sim, _: int = 0) -> httpx.Response:
    files = {"image_url": (None, "https://cdn.example.com/cat.png")}
    return await sim.client.post(UPLOAD, files=files, headers=pixverse_headers())


SUBMIT_CALLS = [native_submit, pixverse_text, pixverse_image, pixverse_upload]


async def stats_when(sim: Sim, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return await eventually(sim.stats, done, timeout=5.0)


async def cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- submit latency --------------------------------------------------------------------------


@pytest.mark.parametrize("call", SUBMIT_CALLS)
async def test_submit_latency_holds_a_submit_in_progress_before_anything_happens(
    make_sim: MakeSim, call: Call
) -> None:
    sim = make_sim()
    img_id = sim.state.upload_image("sim-key-1", "https://cdn.example.com/cat.png")
    await sim.client.put("/_sim/config", json={"submit_latency_ms": LONG_MS})

    task = asyncio.create_task(call(sim, img_id))
    during = await stats_when(sim, lambda s: s["submits_in_progress"] == 1)
    await cancelled(task)

    assert (during["submissions"], during["image_uploads"]) == (0, 1)
    after = await sim.stats()
    assert (after["submits_in_progress"], after["submissions"], after["image_uploads"]) == (0, 0, 1)


@pytest.mark.parametrize("call", SUBMIT_CALLS)
async def test_submit_latency_delays_then_the_call_succeeds(make_sim: MakeSim, call: Call) -> None:
    sim = make_sim()
    img_id = sim.state.upload_image("sim-key-1", "https://cdn.example.com/cat.png")
    await sim.client.put("/_sim/config", json={"submit_latency_ms": 40})

    started = time.perf_counter()
    response = await call(sim, img_id)
    elapsed = time.perf_counter() - started

    assert response.status_code in (200, 201)
    assert response.json().get("ErrCode", 0) == 0
    assert elapsed >= 0.04
    assert (await sim.stats())["submits_in_progress"] == 0


async def test_submit_latency_spares_polls_lookups_and_admin(make_sim: MakeSim) -> None:
    sim = make_sim()
    job_id = (await sim.submit()).json()["id"]
    await sim.client.put("/_sim/config", json={"submit_latency_ms": LONG_MS})

    async with asyncio.timeout(5):
        polled = await sim.job(job_id)
        found = await sim.find("gen-1")
        result = await sim.client.get(
            f"/openapi/v2/video/result/{job_id}", headers=pixverse_headers()
        )
        stats = await sim.stats()

    assert (polled.status_code, found.status_code, result.status_code) == (200, 200, 200)
    assert stats["submits_in_progress"] == 0


async def test_a_refused_submit_leaves_no_submit_in_progress(sim: Sim) -> None:
    unauthorized = await sim.submit(headers={"Authorization": "Bearer nope"})
    rejected = await sim.submit("[reject]")
    pixverse = await sim.client.post(TEXT, json=t2v_body(), headers={"API-KEY": "nope"})

    assert (unauthorized.status_code, rejected.status_code) == (401, 422)
    assert pixverse.json()["ErrCode"] == 10002
    assert (await sim.stats())["submits_in_progress"] == 0


async def test_reset_does_not_move_submits_in_progress(sim: Sim) -> None:
    await sim.client.put("/_sim/config", json={"submit_latency_ms": LONG_MS})
    task = asyncio.create_task(sim.submit())
    await stats_when(sim, lambda s: s["submits_in_progress"] == 1)

    await sim.client.post("/_sim/reset")
    during = await sim.stats()
    await cancelled(task)

    assert during["submits_in_progress"] == 1
    assert (await sim.stats())["submits_in_progress"] == 0


# -- accepted, then answered late ------------------------------------------------------------


@pytest.mark.parametrize("call", [native_submit, pixverse_text])
async def test_a_delayed_answer_comes_after_the_job_exists(make_sim: MakeSim, call: Call) -> None:
    sim = make_sim(accepted_response_delay_ms=LONG_MS)

    task = asyncio.create_task(call(sim, 0))
    during = await stats_when(sim, lambda s: s["submissions"] == 1)
    await cancelled(task)

    assert (during["submits_in_progress"], during["delayed_responses"]) == (1, 1)
    assert (await sim.stats())["submits_in_progress"] == 0


async def test_a_delayed_answer_is_the_normal_answer(make_sim: MakeSim) -> None:
    sim = make_sim(accepted_response_delay_ms=40)

    started = time.perf_counter()
    response = await sim.submit(reference="gen-9")
    elapsed = time.perf_counter() - started

    assert response.status_code == 201
    assert elapsed >= 0.04
    assert [job["id"] for job in (await sim.find("gen-9")).json()["data"]] == [
        response.json()["id"]
    ]
    stats = await sim.stats()
    assert (stats["submissions"], stats["delayed_responses"], stats["lost_responses"]) == (1, 1, 0)


async def test_only_answers_that_create_a_job_are_delayed(make_sim: MakeSim) -> None:
    sim = make_sim(accepted_response_delay_ms=20)
    headers = {**KEY1, "Idempotency-Key": "gen-1:1"}

    created = await sim.submit(headers=headers)
    replayed = await sim.submit(headers=headers)
    rejected = await sim.submit("[reject]")
    uploaded = await pixverse_upload(sim)

    assert (created.status_code, replayed.status_code, rejected.status_code) == (201, 200, 422)
    assert uploaded.json()["ErrCode"] == 0
    assert (await sim.stats())["delayed_responses"] == 1


# -- accepted, then the answer is lost -------------------------------------------------------


def assert_lost(messages: list[Message], status: int) -> None:
    """Only a start with a Content-Length promising a body: no body message follows."""
    assert [m["type"] for m in messages] == ["http.response.start"]
    assert messages[0]["status"] == status
    headers = dict(messages[0]["headers"])
    assert int(headers[b"content-length"]) > 0


async def test_the_marker_loses_a_native_answer_after_creating_the_job(sim: Sim) -> None:
    body = {"operation": "text_to_video", "prompt": "a [lose-response] cat"}

    messages = await sim.raw_post("/v1/jobs", {**body, "client_reference": "gen-3"}, KEY1)

    assert_lost(messages, 201)
    found = (await sim.find("gen-3")).json()["data"]
    assert [job["status"] for job in found] == ["queued"]
    stats = await sim.stats()
    assert (stats["submissions"], stats["lost_responses"]) == (1, 1)
    assert stats["submits_in_progress"] == 0


async def test_the_marker_loses_a_pixverse_answer_after_creating_the_job(sim: Sim) -> None:
    headers = pixverse_headers()

    messages = await sim.raw_post(TEXT, t2v_body("[lose-response] a cat"), headers)

    assert_lost(messages, 200)
    found = (await sim.find(headers["Ai-trace-id"])).json()["data"]
    assert len(found) == 1
    stats = await sim.stats()
    assert (stats["submissions"], stats["lost_responses"]) == (1, 1)


async def test_the_lost_response_rate_loses_answers(make_sim: MakeSim) -> None:
    sim = make_sim(lost_response_rate=1.0)
    body = {"operation": "text_to_video", "prompt": "a cat"}

    native = await sim.raw_post("/v1/jobs", body, KEY1)
    pixverse = await sim.raw_post(TEXT, t2v_body(), pixverse_headers())

    assert_lost(native, 201)
    assert_lost(pixverse, 200)
    stats = await sim.stats()
    assert (stats["submissions"], stats["lost_responses"]) == (2, 2)


async def test_a_partial_lost_response_rate_is_seeded(make_sim: MakeSim) -> None:
    async def lost_pattern(sim: Sim) -> list[bool]:
        body = {"operation": "text_to_video", "prompt": "a cat"}
        return [len(await sim.raw_post("/v1/jobs", body, KEY1)) == 1 for _ in range(30)]

    first = make_sim(lost_response_rate=0.5, seed=5)
    pattern = await lost_pattern(first)

    assert pattern == await lost_pattern(make_sim(lost_response_rate=0.5, seed=5))
    assert 0 < sum(pattern) < 30
    stats = await first.stats()
    assert (stats["submissions"], stats["lost_responses"]) == (30, sum(pattern))


async def test_a_retry_with_the_same_idempotency_key_gets_the_lost_job(sim: Sim) -> None:
    headers = {**KEY1, "Idempotency-Key": "gen-4:1"}
    body = {"operation": "text_to_video", "prompt": "[lose-response]", "client_reference": "gen-4"}

    lost = await sim.raw_post("/v1/jobs", body, headers)
    retry = await sim.client.post("/v1/jobs", json=body, headers=headers)

    assert_lost(lost, 201)
    assert retry.status_code == 200
    assert retry.json()["id"] == (await sim.find("gen-4")).json()["data"][0]["id"]
    stats = await sim.stats()
    assert (stats["submissions"], stats["idempotent_replays"], stats["lost_responses"]) == (1, 1, 1)


async def test_refusals_are_never_lost(make_sim: MakeSim) -> None:
    sim = make_sim(lost_response_rate=1.0)

    rejected = await sim.submit("[reject] [lose-response]")
    pixverse = await sim.client.post(TEXT, json=t2v_body("[reject]"), headers=pixverse_headers())
    uploaded = await pixverse_upload(sim)

    assert rejected.status_code == 422
    assert pixverse.json()["ErrCode"] == 500063
    assert uploaded.json()["ErrCode"] == 0
    assert (await sim.stats())["lost_responses"] == 0


async def test_a_lost_answer_can_also_be_late(make_sim: MakeSim) -> None:
    sim = make_sim(accepted_response_delay_ms=30)
    body = {"operation": "text_to_video", "prompt": "[lose-response]"}

    started = time.perf_counter()
    messages = await sim.raw_post("/v1/jobs", body, KEY1)

    assert time.perf_counter() - started >= 0.03
    assert_lost(messages, 201)
    stats = await sim.stats()
    assert (stats["delayed_responses"], stats["lost_responses"]) == (1, 1)


async def test_reset_clears_the_lost_and_delayed_counts(make_sim: MakeSim) -> None:
    sim = make_sim(accepted_response_delay_ms=1)
    await sim.raw_post(
        "/v1/jobs", {"operation": "text_to_video", "prompt": "[lose-response]"}, KEY1
    )
    before = await sim.stats()

    await sim.client.post("/_sim/reset")

    after = await sim.stats()
    assert (before["lost_responses"], before["delayed_responses"]) == (1, 1)
    assert (after["lost_responses"], after["delayed_responses"]) == (0, 0)
