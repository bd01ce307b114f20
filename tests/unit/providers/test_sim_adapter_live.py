"""SimAdapter against a real HTTP server (a tiny fake of the sim protocol, served by uvicorn)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from genbus.providers import (
    AuthFailed,
    ConcurrencyLimited,
    Credentials,
    JobNotFound,
    JobState,
    ProviderJobRef,
    ProviderUnavailable,
    RateLimited,
    SimAdapter,
    SubmitOutcomeUnknown,
    SubmitRequest,
)


@dataclass
class FakeSim:
    """State of the fake provider, shared with the test so it can move jobs along."""

    keys: set[str]
    base_url: str = ""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_idempotency_key: dict[str, str] = field(default_factory=dict)
    client_ports: list[int] = field(default_factory=list)


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": code}}, status, headers=headers)


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k != "body"}


def build_app(sim: FakeSim) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        assert request.client is not None
        sim.client_ports.append(request.client.port)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key not in sim.keys:
            return _error(401, "unauthorized")
        return await call_next(request)

    @app.post("/v1/jobs")
    async def create_job(request: Request) -> JSONResponse:
        body = await request.json()
        if body["prompt"] == "[slow down]":
            return _error(429, "rate_limited", {"Retry-After": "2"})
        if body["prompt"] == "[busy]":
            return _error(429, "concurrency_limit")
        key = request.headers.get("Idempotency-Key")
        if key and key in sim.by_idempotency_key:
            job = sim.jobs[sim.by_idempotency_key[key]]
            return JSONResponse({"id": job["id"], "status": job["status"]}, 200)
        job_id = uuid4().hex
        sim.jobs[job_id] = {"id": job_id, "status": "queued", "progress": 0.0, "body": body}
        if key:
            sim.by_idempotency_key[key] = job_id
        return JSONResponse({"id": job_id, "status": "queued"}, 201)

    @app.get("/v1/jobs")
    async def list_jobs(client_reference: str) -> JSONResponse:
        # Insertion order is creation order; the sim lists newest first.
        jobs = [
            job for job in sim.jobs.values() if job["body"]["client_reference"] == client_reference
        ]
        return JSONResponse({"data": [_public(job) for job in reversed(jobs)]})

    @app.get("/v1/jobs/{job_id}")
    async def get_job(job_id: str) -> JSONResponse:
        job = sim.jobs.get(job_id)
        if job is None:
            return _error(404, "not_found")
        return JSONResponse(_public(job))

    @app.post("/v1/jobs/{job_id}/cancel")
    async def cancel_job(job_id: str) -> JSONResponse:
        job = sim.jobs.get(job_id)
        if job is None:
            return _error(404, "not_found")
        if job["status"] in ("queued", "running"):
            job["status"] = "cancelled"
        return JSONResponse({"id": job_id, "status": job["status"]}, 202)

    return app


@pytest.fixture
def api_key() -> str:
    return f"sk-live-{uuid4().hex}"


@pytest.fixture
async def fake_sim(api_key: str) -> AsyncIterator[FakeSim]:
    sim = FakeSim(keys={api_key})
    # Bound and listening before the server task starts: early connections wait in the backlog,
    # so no readiness polling is needed.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sim.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(build_app(sim), lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sim
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def adapter(fake_sim: FakeSim) -> AsyncIterator[SimAdapter]:
    async with SimAdapter(base_url=fake_sim.base_url) as adapter:
        yield adapter


def submit_request(api_key: str, prompt: str = "a cat") -> SubmitRequest:
    generation_id = uuid4()
    return SubmitRequest(
        generation_id=generation_id,
        operation_type="text_to_video",
        params={"prompt": prompt, "duration": 5},
        idempotency_key=f"genbus-{generation_id}-1",
        credentials=Credentials(api_key=api_key),
    )


async def test_job_lifecycle_over_one_keep_alive_connection(
    adapter: SimAdapter, fake_sim: FakeSim, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # includes httpx/httpcore debug output
    request = submit_request(api_key)

    first = await adapter.submit(request)
    again = await adapter.submit(request)

    assert first.replayed is False
    assert again.replayed is True
    assert again.provider_job_id == first.provider_job_id
    assert len(fake_sim.jobs) == 1
    assert fake_sim.jobs[first.provider_job_id]["body"]["client_reference"] == str(
        request.generation_id
    )

    ref = ProviderJobRef(provider_job_id=first.provider_job_id, credentials=request.credentials)
    assert (await adapter.status(ref)).state is JobState.QUEUED

    fake_sim.jobs[first.provider_job_id].update(status="running", progress=0.5)
    running = await adapter.status(ref)
    assert (running.state, running.progress) == (JobState.RUNNING, 0.5)

    fake_sim.jobs[first.provider_job_id].update(
        status="succeeded",
        progress=1.0,
        output={"url": "/v1/files/1", "media_type": "video/mp4", "width": 64, "height": 64},
    )
    done = await adapter.status(ref)
    assert done.state is JobState.SUCCEEDED
    assert done.asset is not None
    assert str(done.asset.url) == f"{fake_sim.base_url}/v1/files/1"

    other = await adapter.submit(submit_request(api_key))
    other_ref = ProviderJobRef(
        provider_job_id=other.provider_job_id, credentials=request.credentials
    )
    await adapter.cancel(other_ref)
    assert (await adapter.status(other_ref)).state is JobState.CANCELLED

    # Every request above reused one pooled connection.
    assert len(fake_sim.client_ports) == 8
    assert len(set(fake_sim.client_ports)) == 1
    assert api_key not in caplog.text


async def test_errors_from_a_real_server(
    adapter: SimAdapter, fake_sim: FakeSim, api_key: str
) -> None:
    with pytest.raises(AuthFailed) as auth:
        await adapter.submit(submit_request("sk-unknown-key"))
    assert "sk-unknown-key" not in str(auth.value)

    with pytest.raises(RateLimited) as limited:
        await adapter.submit(submit_request(api_key, "[slow down]"))
    assert limited.value.retry_after_s == 2.0

    with pytest.raises(ConcurrencyLimited):
        await adapter.submit(submit_request(api_key, "[busy]"))

    with pytest.raises(JobNotFound):
        await adapter.status(
            ProviderJobRef(provider_job_id="missing", credentials=Credentials(api_key=api_key))
        )
    assert fake_sim.jobs == {}


async def test_find_by_reference_over_the_wire(
    adapter: SimAdapter, fake_sim: FakeSim, api_key: str
) -> None:
    request = submit_request(api_key)
    assert await adapter.find_by_reference(request) is None

    first = await adapter.submit(request)
    other = await adapter.submit(submit_request(api_key))
    found = await adapter.find_by_reference(request)

    assert found is not None
    assert (found.provider_job_id, found.status, found.replayed) == (
        first.provider_job_id,
        "queued",
        True,
    )
    assert found.provider_job_id != other.provider_job_id


@pytest.fixture
def silent_socket() -> Iterator[socket.socket]:
    """A listening socket nobody accepts on: connections succeed, responses never come."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


async def test_a_read_timeout_leaves_a_submit_unknown_and_a_poll_unavailable(
    silent_socket: socket.socket, api_key: str
) -> None:
    port = silent_socket.getsockname()[1]
    async with SimAdapter(
        base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(0.2)
    ) as adapter:
        # The request sits in the server's socket buffer: the sim may have created the job.
        with pytest.raises(SubmitOutcomeUnknown, match="timed out"):
            await adapter.submit(submit_request(api_key))
        job = ProviderJobRef(provider_job_id="j", credentials=Credentials(api_key=api_key))
        with pytest.raises(ProviderUnavailable, match="timed out") as poll:
            await adapter.status(job)
    assert type(poll.value) is ProviderUnavailable


async def test_a_refused_connection_is_provider_unavailable(api_key: str) -> None:
    # Bound but not listening: the kernel refuses connections while we hold the port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with SimAdapter(base_url=f"http://127.0.0.1:{port}") as adapter:
            with pytest.raises(ProviderUnavailable) as info:
                await adapter.submit(submit_request(api_key))
    assert type(info.value) is ProviderUnavailable  # never sent: no job can exist
    assert api_key not in str(info.value)
