"""Observability of HTTP servers: `/metrics` (refreshed on scrape), request metrics, traces.

`instrument_fastapi(app)` is the one call the api makes; the workers' probe servers
(`genbus.runtime.http_server.service_app`) use the same pieces.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS

#: An async refresh of gauges that are cheaper to compute when scraped (e.g. a `GROUP BY`).
ScrapeHook = Callable[[], Awaitable[object]]
#: Probe and scrape endpoints: neither traced nor counted.
UNOBSERVED_PATHS = ("/healthz", "/readyz", "/metrics")
_SCRAPE_HOOK_TIMEOUT_S = 2.0
log = get_logger(__name__)


def metrics_endpoint(
    registry: CollectorRegistry = REGISTRY, on_scrape: Sequence[ScrapeHook] = ()
) -> Callable[[Request], Awaitable[Response]]:
    """A `/metrics` handler: run the scrape hooks (bounded, failures logged), then render."""

    async def metrics(_: Request) -> Response:
        for hook in on_scrape:
            try:
                await asyncio.wait_for(hook(), _SCRAPE_HOOK_TIMEOUT_S)
            except Exception as exc:
                log.warning(
                    "metrics refresh failed", hook=getattr(hook, "__name__", "?"), error=repr(exc)
                )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


class HttpMetricsMiddleware:
    """Counts and times every request by route template (never by raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNOBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            METRICS.http_requests.labels(method, route, str(status)).inc()
            METRICS.http_request_seconds.labels(method, route).observe(
                time.perf_counter() - started
            )


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path) if path else "unmatched"


def instrument_fastapi(
    app: Any, *, on_scrape: Sequence[ScrapeHook] = (), registry: CollectorRegistry = REGISTRY
) -> None:
    """Serve `/metrics`, count requests, and trace them (a no-op until tracing is configured).

    Call once on the FastAPI app, before it starts serving.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app.add_route(
        "/metrics", metrics_endpoint(registry, on_scrape), methods=["GET"], include_in_schema=False
    )
    app.add_middleware(HttpMetricsMiddleware)
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=",".join(p.lstrip("/") for p in UNOBSERVED_PATHS)
    )
