"""A bound on the requests one API key has in hand at once on a replica, checked before any
work (no database read, no key lookup): one key firing hundreds of requests together cannot
take the whole event loop from everyone else.

A request counts from its arrival until its response starts (an open SSE stream counts no
more; streams have their own caps). Past `GENBUS_API_MAX_INFLIGHT_PER_KEY`: 429 `rate_limited`
with `Retry-After: 1`. Requests are told apart by their `Authorization` header; requests
without one (anonymous, local only) are not bounded.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genbus.api.service_layer.metrics import API_METRICS
from genbus.runtime.problems import problem_response


def _key_of(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            # A digest: the secret itself is never kept.
            return hashlib.blake2b(value, digest_size=16).digest()
    return None


class KeyConcurrency:
    """ASGI middleware; `limit` 0 disables it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._inflight: Counter[bytes] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope) if scope["type"] == "http" and self.limit else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if self._inflight[key] >= self.limit:
            API_METRICS.api_admission_refusals.labels("inflight").inc()
            refusal = problem_response(
                429,
                "rate_limited",
                f"this API key already has {self.limit} requests in progress; retry after "
                "Retry-After",
                headers={"Retry-After": "1"},
            )
            await refusal(scope, receive, send)
            return
        self._inflight[key] += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._inflight[key] -= 1
                if self._inflight[key] <= 0:
                    del self._inflight[key]

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_releasing)
        finally:
            release()
