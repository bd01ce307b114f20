"""A deadline on every request until its response starts: past it, `503`
`service_unavailable` with `Retry-After`, at once, whatever it was waiting for.

What a request waits for is the database (a free pooled connection, an answer): a database
that went silent (paused, failing over, partitioned) would otherwise hold the request for the
pool's checkout timeout plus the command timeout. A request cancelled this way commits nothing
it had not committed; a create retried with the same `Idempotency-Key` finds what was.
A streaming response (SSE) is bounded only until its first byte. `Prefer: wait=N` extends the
deadline by N seconds (the request asked to be held that long).
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genbus.api.entrypoints.http.problems import service_unavailable
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

_PREFER_WAIT = re.compile(rb"(?:^|[;,\s])wait\s*=\s*(\d{1,6})")


def _asked_wait_s(scope: Scope) -> float:
    for name, value in scope.get("headers", ()):
        if name == b"prefer":
            match = _PREFER_WAIT.search(value.lower())
            if match:
                return float(match.group(1))
    return 0.0


class RequestDeadline:
    """ASGI middleware; a `timeout_s` of 0 disables it."""

    def __init__(
        self, app: ASGIApp, timeout_s: float, own_limits: frozenset[tuple[str, str]] = frozenset()
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        #: (method, path) of routes that bound their time themselves (uploads).
        self.own_limits = own_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.timeout_s
            or (scope.get("method"), scope.get("path")) in self.own_limits
        ):
            await self.app(scope, receive, send)
            return
        started = asyncio.Event()
        gave_up = False

        async def send_noting_start(message: Message) -> None:
            if gave_up:
                return  # answered already; the handler is being cancelled
            if message["type"] == "http.response.start":
                started.set()
            await send(message)

        handling = asyncio.ensure_future(self.app(scope, receive, send_noting_start))
        watching = asyncio.ensure_future(started.wait())
        try:
            done, _ = await asyncio.wait(
                {handling, watching},
                timeout=self.timeout_s + _asked_wait_s(scope),
                return_when=asyncio.FIRST_COMPLETED,
            )
        except BaseException:
            handling.cancel()
            raise
        finally:
            watching.cancel()
        if done:
            await handling
            return
        gave_up = not started.is_set()
        # Cancelled, not awaited: its clean-up (returning a connection to the pool) may itself
        # wait for the silent database. The answer goes now.
        handling.cancel()
        handling.add_done_callback(_retrieve)
        log.warning("request past its deadline", path=scope.get("path"), timeout_s=self.timeout_s)
        if gave_up:
            await service_unavailable()(scope, receive, send)
        else:
            with contextlib.suppress(asyncio.CancelledError):
                await handling


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()
