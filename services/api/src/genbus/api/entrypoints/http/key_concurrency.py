"""Bounds on the requests a replica has in hand at once, checked before any work (no database
read, no key lookup): one key firing hundreds of requests together cannot take the whole event
loop from everyone else, and a saturated process answers its excess at once instead of letting
it queue unseen in its sockets.

A request counts from its arrival until its response starts (an open SSE stream counts no
more; streams have their own caps). Past `GENBUS_API_MAX_INFLIGHT_PER_KEY` of one key: 429
`rate_limited`; past `GENBUS_API_MAX_INFLIGHT_REQUESTS` in all: 429 `overloaded`; both with
`Retry-After: 1`. Keys are told apart by the `Authorization` header; requests without one
(anonymous, local only) count only in the total. Probes (`/healthz`, `/readyz`, `/metrics`)
are never refused.
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


_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


class KeyConcurrency:
    """ASGI middleware; a `limit` (per key) or `total` of 0 disables that bound."""

    def __init__(self, app: ASGIApp, limit: int, total: int = 0) -> None:
        self.app = app
        self.limit = limit
        self.total = total
        self._inflight: Counter[bytes] = Counter()
        self._all = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in _PROBES:
            await self.app(scope, receive, send)
            return
        if self.total and self._all >= self.total:
            API_METRICS.api_admission_refusals.labels("inflight_total").inc()
            await _refusal(
                "overloaded", "the service is overloaded (too many requests in progress)"
            )(scope, receive, send)
            return
        key = _key_of(scope) if self.limit else None
        if key is not None and self._inflight[key] >= self.limit:
            API_METRICS.api_admission_refusals.labels("inflight").inc()
            await _refusal(
                "rate_limited", f"this API key already has {self.limit} requests in progress"
            )(scope, receive, send)
            return
        self._all += 1
        if key is not None:
            self._inflight[key] += 1
        held = True

        def release() -> None:
            nonlocal held
            if not held:
                return
            held = False
            self._all -= 1
            if key is not None:
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


def _refusal(code: str, detail: str) -> ASGIApp:
    return problem_response(
        429, code, f"{detail}; retry after Retry-After", headers={"Retry-After": "1"}
    )
