"""Direct JetStream access for the commands that read the event streams (status, dead letters)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import nats
from nats.js import JetStreamContext

from genbus.runtime.nats_client import NatsAccess, nats_servers

NATS_URL_ENV = "NATS_URL"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"

T = TypeVar("T")


def nats_url(env: Mapping[str, str]) -> str:
    return env.get(NATS_URL_ENV) or DEFAULT_NATS_URL


def nats_access(env: Mapping[str, str]) -> NatsAccess:
    """Servers, user (`GENBUS_NATS_USER`/`GENBUS_NATS_PASSWORD`, or the URL's) and TLS CA
    (`GENBUS_NATS_TLS_CA`): dead-letter replay needs a privileged user (the provisioner)."""
    return NatsAccess(
        servers=tuple(nats_servers(nats_url(env))),
        user=env.get("GENBUS_NATS_USER") or None,
        password=env.get("GENBUS_NATS_PASSWORD") or None,
        tls_ca=env.get("GENBUS_NATS_TLS_CA") or None,
    )


def with_jetstream(env: Mapping[str, str], work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """Connect, run `work`, close: one short-lived connection per command."""

    async def run() -> T:
        access = nats_access(env)
        nc = await nats.connect(
            list(access.servers),
            connect_timeout=5,
            max_reconnect_attempts=2,
            **access.connect_options(),
        )
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(run())
