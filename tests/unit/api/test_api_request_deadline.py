"""A request whose response has not started within the deadline gets 503 at once; one that
answers in time, or has started streaming, is left alone; `Prefer: wait` extends it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from genbus.api.entrypoints.http.request_deadline import RequestDeadline

HANG_S = 30.0


async def hang(_: Request) -> Response:
    await asyncio.sleep(HANG_S)  # the silent database it stands for
    return PlainTextResponse("late")


async def quick(_: Request) -> Response:
    return PlainTextResponse("ok")


async def stream(_: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(0.3)  # a stream goes on past the deadline
        yield b"second"

    return StreamingResponse(body())


def _client(timeout_s: float) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/hang", hang), Route("/quick", quick), Route("/stream", stream)])
    transport = httpx.ASGITransport(app=RequestDeadline(app, timeout_s=timeout_s))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_a_request_past_its_deadline_gets_503_with_a_code_at_once() -> None:
    async with _client(0.2) as client:
        started = time.monotonic()
        response = await client.get("/hang")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert elapsed < 2.0


async def test_answers_in_time_and_started_streams_are_left_alone() -> None:
    async with _client(0.2) as client:
        assert (await client.get("/quick")).text == "ok"
        assert (await client.get("/stream")).text == "firstsecond"


async def test_prefer_wait_extends_the_deadline() -> None:
    async with _client(0.1) as client:
        started = time.monotonic()
        response = await client.get("/hang", headers={"Prefer": "respond-async, wait=1"})
    assert response.status_code == 503
    assert 1.0 <= time.monotonic() - started < 3.0


async def test_zero_disables_the_deadline() -> None:
    async with _client(0) as client:
        assert (await client.get("/quick")).status_code == 200
