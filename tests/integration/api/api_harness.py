"""Helpers of the api integration tests: a client of the running app, and the events the
dispatcher and poller would publish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import httpx
from fastapi import FastAPI
from nats.aio.client import Client
from nats.js import JetStreamContext

from genbus.contracts import (
    GENERATIONS_STREAM,
    Asset,
    ConsumerSpec,
    Event,
    EventBinding,
    GenerationCompleted,
    GenerationSubmitted,
)
from genbus.runtime.publisher import encode_event

T = TypeVar("T")
USER = "local"
ASSET = Asset(
    url="https://cdn.example.com/out.mp4",
    media_type="video/mp4",
    width=1280,
    height=720,
    duration_s=5.0,
)


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 15.0
) -> T:
    """Poll `probe` until `done(result)`; fail with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last: {result!r}")
        await asyncio.sleep(0.05)


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    database_url: str
    nc: Client
    js: JetStreamContext

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
