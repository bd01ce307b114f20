"""Helpers of the api integration tests: a client of the running app, and the events the
dispatcher and poller would publish."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from nats.aio.client import Client
from nats.js import JetStreamContext

from genbus.api.bootstrap import ApiRuntime
from genbus.api.service_layer.api_keys import issue_api_key
from genbus.contracts import (
    GENERATIONS_STREAM,
    Asset,
    ConsumerSpec,
    Event,
    EventBinding,
    GenerationCompleted,
    GenerationSubmitted,
)
from genbus.devstack.ports import free_port
from genbus.runtime.publisher import encode_event
from tests.waiting import eventually as eventually

USER = "local"
ASSET = Asset(
    url="https://cdn.example.com/out.mp4",
    media_type="video/mp4",
    width=1280,
    height=720,
    duration_s=5.0,
)


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    database_url: str
    nc: Client
    js: JetStreamContext
    #: The API key `client` uses (user `USER`).
    key: str = ""
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def runtime(self) -> ApiRuntime:
        runtime: ApiRuntime = self.app.state.runtime
        return runtime

    async def new_key(self, user_id: str, *, admin: bool = False) -> str:
        issued = await issue_api_key(
            self.runtime.uow(), user_id=user_id, name="tests", admin=admin, now=datetime.now(UTC)
        )
        return issued.secret

    async def client_as(self, user_id: str, *, admin: bool = False) -> httpx.AsyncClient:
        """An in-process client authenticated with a new key of `user_id`."""
        key = await self.new_key(user_id, admin=admin)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://api.test",
            headers={"Authorization": f"Bearer {key}"},
        )
        self._clients.append(client)
        return client

    async def close_clients(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()

    async def create(self, path: str = "/api/v1/generations", **body: Any) -> dict[str, Any]:
        response = await self.client.post(path, json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, generation_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/generations/{generation_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_status(self, generation_id: str, status: str) -> dict[str, Any]:
        return await eventually(lambda: self.get(generation_id), lambda g: g["status"] == status)

    async def publish(self, binding: EventBinding[Event], event: Event) -> int:
        """Publish as another service would; returns the stream sequence."""
        message = encode_event(binding, event)
        ack = await self.js.publish(
            message.subject,
            message.payload,
            stream=GENERATIONS_STREAM.name,
            headers=message.headers,
        )
        assert not ack.duplicate
        return ack.seq

    async def wait_consumed(self, spec: ConsumerSpec, seq: int) -> None:
        """Until the api's durable consumer `spec` has acked stream message `seq`."""

        async def ack_floor() -> int:
            info = await self.js.consumer_info(GENERATIONS_STREAM.name, spec.durable)
            return info.ack_floor.stream_seq if info.ack_floor else 0

        await eventually(ack_floor, lambda floor: floor >= seq)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def count(self, table: str) -> int:
        rows = await self.fetch(f"SELECT count(*) AS n FROM api.{table}")
        return int(rows[0]["n"])


def submitted_event(
    generation: dict[str, Any],
    *,
    attempt: int = 1,
    account_id: str = "acct-1",
    provider_job_id: str = "job-1",
) -> GenerationSubmitted:
    return GenerationSubmitted(
        event_id=uuid4(),
        occurred_at=datetime.now(UTC),
        generation_id=UUID(generation["id"]),
        user_id=USER,
        provider_id=generation["provider_id"],
        operation_type=generation["operation_type"],
        account_id=account_id,
        provider_job_id=provider_job_id,
        attempt=attempt,
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
    )


def completed_event(
    generation: dict[str, Any], status: str = "completed", **fields: Any
) -> GenerationCompleted:
    outcome: dict[str, Any] = {}
    if status == "completed":
        outcome["asset"] = ASSET
    if status == "failed":
        outcome["error"] = {"code": "provider_failed", "message": "boom", "retryable": False}
    return GenerationCompleted.model_validate(
        {
            "event_id": uuid4(),
            "occurred_at": datetime.now(UTC),
            "generation_id": generation["id"],
            "user_id": USER,
            "provider_id": generation["provider_id"],
            "operation_type": generation["operation_type"],
            "status": status,
            "attempt": 1,
            "account_id": "acct-1",
            "provider_job_id": "job-1",
            **outcome,
            **fields,
        }
    )


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: Any


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """The events of an open `text/event-stream` response (comments, i.e. pings, skipped)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield SseEvent(
                    fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value


@dataclass
class LiveApi:
    """The api served over real HTTP, for streaming."""

    api: Api
    base_url: str

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=15.0, **kwargs)


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` over HTTP on a free port in this event loop (its lifespan is the caller's
    business); yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
