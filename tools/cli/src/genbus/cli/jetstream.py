"""Direct JetStream access for the commands that read the event streams (status, dead letters).

Every NATS connection option comes from `connect_options`: adding credentials or a CA file
later is one edit there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import nats
from nats.js import JetStreamContext

from genbus.cli.client import AdminError
from genbus.runtime.failures import one_line_failure
from genbus.runtime.nats_client import NatsAccess, nats_servers

NATS_URL_ENV = "NATS_URL"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
CONNECT_TIMEOUT_S = 3.0

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


def connect_options(env: Mapping[str, str]) -> dict[str, Any]:
    """`nats.connect` keyword arguments: servers, credentials and CA (`nats_access`), and one
    quick try (a tool, not a service)."""
    access = nats_access(env)
    return {
        "servers": list(access.servers),
        "connect_timeout": CONNECT_TIMEOUT_S,
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0.5,
        "error_cb": _quiet,  # the failure is reported once, as one line, by `with_jetstream`
        **access.connect_options(),
    }


async def _quiet(_: Exception) -> None:
    return None


def with_jetstream(env: Mapping[str, str], work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """Connect, run `work`, close: one short-lived connection per command. A NATS that cannot
    be reached, or fails midway, is an `AdminError` (one line), never a traceback."""

    async def run() -> T:
        try:
            nc = await nats.connect(**connect_options(env))
        except Exception as exc:
            failure = one_line_failure(exc, "NATS", nats_url(env))
            raise AdminError("nats_unreachable", failure) from None
        try:
            return await work(nc.jetstream())
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise AdminError("nats_error", one_line_failure(exc, "NATS", nats_url(env))) from None
        finally:
            await nc.close()

    return asyncio.run(run())
