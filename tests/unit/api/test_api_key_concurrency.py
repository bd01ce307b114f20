"""One key's requests in progress at once are bounded before any work; other keys, anonymous
requests and started responses (open streams) are not held against it."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from genbus.api.entrypoints.http.key_concurrency import KeyConcurrency
from tests.waiting import eventually


def _app() -> tuple[httpx.AsyncClient, asyncio.Event, list[str]]:
    release = asyncio.Event()
    seen: list[str] = []

    async def slow(request: Request) -> Response:
        seen.append(request.headers.get("authorization", "anonymous"))
        await release.wait()
        return PlainTextResponse("ok")

    async def quick(_: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/slow", slow), Route("/quick", quick)])
    transport = httpx.ASGITransport(app=KeyConcurrency(app, limit=2))
    return httpx.AsyncClient(transport=transport, base_url="http://t"), release, seen


async def test_past_the_bound_a_key_gets_429_at_once_and_others_do_not() -> None:
    client, release, seen = _app()
    mine = {"Authorization": "Bearer mine"}
    async with client:
        held = [asyncio.ensure_future(client.get("/slow", headers=mine)) for _ in range(2)]
        await _until_seen(seen, 2)
        refused = await client.get("/slow", headers=mine)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert refused.headers["Retry-After"] == "1"
        assert len(seen) == 2  # refused before the route did anything
        other = asyncio.ensure_future(client.get("/slow", headers={"Authorization": "Bearer b"}))
        anonymous = asyncio.ensure_future(client.get("/slow"))
        await _until_seen(seen, 4)
        release.set()
        for response in await asyncio.gather(*held, other, anonymous):
            assert response.status_code == 200
        # Given back: the key may send again.
        assert (await client.get("/quick", headers=mine)).status_code == 200


async def test_zero_disables_the_bound() -> None:
    app = Starlette(routes=[Route("/q", lambda _: PlainTextResponse("ok"))])
    transport = httpx.ASGITransport(app=KeyConcurrency(app, limit=0))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/q", headers={"Authorization": "Bearer x"})).status_code == 200


async def _until_seen(seen: list[str], count: int) -> None:
    async def seen_now() -> int:
        return len(seen)

    await eventually(seen_now, lambda n: n >= count, timeout=5)


async def test_past_the_total_everyone_gets_429_overloaded_but_probes_pass() -> None:
    release = asyncio.Event()
    started: list[int] = []

    async def slow(_: Request) -> Response:
        started.append(1)
        await release.wait()
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/slow", slow), Route("/healthz", slow)])
    transport = httpx.ASGITransport(app=KeyConcurrency(app, limit=10, total=2))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        held = [asyncio.ensure_future(client.get("/slow")) for _ in range(2)]
        await eventually(lambda: _count(started), lambda n: n >= 2, timeout=5)
        refused = await client.get("/slow", headers={"Authorization": "Bearer other"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "overloaded"
        assert refused.headers["Retry-After"] == "1"
        probe = asyncio.ensure_future(client.get("/healthz"))
        await eventually(lambda: _count(started), lambda n: n >= 3, timeout=5)
        release.set()
        for response in await asyncio.gather(*held, probe):
            assert response.status_code == 200
        assert (await client.get("/slow")).status_code == 200


async def _count(items: list[int]) -> int:
    return len(items)
