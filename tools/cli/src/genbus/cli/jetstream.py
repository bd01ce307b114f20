"""Direct JetStream access for the commands that read the event streams (status, dead letters)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import nats
from nats.js import JetStreamContext

NATS_URL_ENV = "NATS_URL"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"

T = TypeVar("T")


def nats_url(env: Mapping[str, str]) -> str:
    return env.get(NATS_URL_ENV) or DEFAULT_NATS_URL


def with_jetstream(env: Mapping[str, str], work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """Connect, run `work`, close: one short-lived connection per command."""

    async def run() -> T:
        servers = [url.strip() for url in nats_url(env).split(",") if url.strip()]
        nc = await nats.connect(servers, connect_timeout=5, max_reconnect_attempts=2)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(run())
