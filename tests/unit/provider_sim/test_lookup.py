"""`GET /v1/jobs?client_reference=`: a key's jobs by reference, newest first."""

from __future__ import annotations

from uuid import uuid4

import pytest

from .helpers import KEY1, KEY2, MakeSim, Sim


async def test_lookup_lists_the_keys_jobs_with_that_reference_newest_first(sim: Sim) -> None:
    oldest = (await sim.submit(reference="gen-7")).json()["id"]
    sim.clock.advance(1)
    await sim.submit(reference="gen-8")
    await sim.submit(reference="gen-7", headers=KEY2)
    newest = (await sim.submit(reference="gen-7")).json()["id"]

    response = await sim.find("gen-7")

    assert response.status_code == 200
    assert [job["id"] for job in response.json()["data"]] == [newest, oldest]


async def test_lookup_renders_jobs_as_get_does(sim: Sim) -> None:
    done = (await sim.submit(reference="gen-1")).json()["id"]
    sim.clock.advance(10)
    running = (await sim.submit(reference="gen-1", duration=8)).json()["id"]
    sim.clock.advance(5)

    listed = (await sim.find("gen-1")).json()["data"]

    assert listed == [(await sim.job(running)).json(), (await sim.job(done)).json()]
    assert [job["status"] for job in listed] == ["running", "succeeded"]
    assert listed[1]["output"]["url"] == f"http://sim.test/v1/files/{done}"


async def test_lookup_of_an_unknown_reference_is_an_empty_list(sim: Sim) -> None:
    await sim.submit(reference="gen-1")

    response = await sim.find("gen-2")

    assert (response.status_code, response.json()) == (200, {"data": []})


async def test_lookup_finds_cancelled_and_pixverse_jobs(sim: Sim) -> None:
    cancelled = (await sim.submit(reference="gen-1")).json()["id"]
    await sim.client.post(f"/v1/jobs/{cancelled}/cancel", headers=KEY1)
    trace_id = str(uuid4())
    body = {"prompt": "a cat", "model": "v4.5", "quality": "720p", "duration": 5}
    generated = await sim.client.post(
        "/openapi/v2/video/text/generate",
        json={**body, "aspect_ratio": "16:9"},
        headers={"API-KEY": "sim-key-1", "Ai-trace-id": trace_id},
    )

    by_native = (await sim.find("gen-1")).json()["data"]
    by_trace = (await sim.find(trace_id)).json()["data"]

    assert [(job["id"], job["status"]) for job in by_native] == [(cancelled, "cancelled")]
    assert [job["id"] for job in by_trace] == [str(generated.json()["Resp"]["video_id"])]


async def test_lookup_counts_as_a_lookup_not_a_status_request(sim: Sim) -> None:
    await sim.submit(reference="gen-1")

    await sim.find("gen-1")
    await sim.find("gen-2")

    stats = await sim.stats()
    assert (stats["lookups"], stats["status_requests"]) == (2, 0)


async def test_reset_forgets_references(sim: Sim) -> None:
    await sim.submit(reference="gen-1")
    await sim.find("gen-1")

    await sim.client.post("/_sim/reset")

    assert (await sim.find("gen-1")).json() == {"data": []}
    assert (await sim.stats())["lookups"] == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}])
async def test_lookup_needs_a_known_key(sim: Sim, headers: dict[str, str]) -> None:
    await sim.submit(reference="gen-1")

    response = await sim.find("gen-1", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_lookup_without_a_reference_is_400(sim: Sim) -> None:
    response = await sim.client.get("/v1/jobs", headers=KEY1)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_lookup_suffers_simulated_server_faults(make_sim: MakeSim) -> None:
    sim = make_sim()
    await sim.submit(reference="gen-1")
    await sim.client.put("/_sim/config", json={"error_5xx_rate": 1.0})

    response = await sim.find("gen-1")

    assert response.status_code in (500, 503)
