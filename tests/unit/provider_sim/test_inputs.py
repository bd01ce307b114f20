"""`fetch_inputs`: the sim downloads each input URL a job names, as a real provider does, and
refuses the job when one does not answer 200; what it fetched is listed at `/_sim/inputs`."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from genbus.devstack.ports import free_port

from .helpers import MakeSim

IMAGE = b"\x89PNG\r\n\x1a\n" + b"\x01" * 100


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    async def image(_: web.Request) -> web.Response:
        return web.Response(body=IMAGE, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", image)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_inputs_are_fetched_and_a_missing_one_refuses_the_job(
    make_sim: MakeSim, origin: str
) -> None:
    sim = make_sim(fetch_inputs=True)
    good = [{"role": "image", "url": f"{origin}/cat.png"}]
    accepted = await sim.submit(operation="image_to_video", inputs=good)
    assert accepted.status_code == 201, accepted.text

    missing = [{"role": "image", "url": f"{origin}/gone.png"}]
    refused = await sim.submit(operation="image_to_video", inputs=missing, reference="gen-2")
    assert refused.status_code == 400
    assert "404" in refused.json()["error"]["message"]

    fetched = (await sim.client.get("/_sim/inputs")).json()["data"]
    assert [(f["url"], f["status"]) for f in fetched] == [
        (good[0]["url"], 200),
        (missing[0]["url"], 404),
    ]
    assert fetched[0]["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    await sim.client.post("/_sim/reset")
    assert (await sim.client.get("/_sim/inputs")).json()["data"] == []


async def test_inputs_are_not_fetched_unless_asked(make_sim: MakeSim) -> None:
    sim = make_sim()
    unreachable = [{"role": "image", "url": f"http://127.0.0.1:{free_port()}/x.png"}]
    accepted = await sim.submit(operation="image_to_video", inputs=unreachable)
    assert accepted.status_code == 201
    assert (await sim.client.get("/_sim/inputs")).json()["data"] == []
