"""The small HTTP side of a worker service: /healthz, /readyz, /metrics, plus its own routes.

The dispatcher and poller have no public API; this server is for probes, Prometheus and (for the
dispatcher) the admin API. It runs in the service's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

import uvicorn
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from genbus.runtime.instrumentation import HttpMetricsMiddleware, ScrapeHook, metrics_endpoint
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS

ReadinessCheck = Callable[[], Awaitable[None]]
log = get_logger(__name__)


def service_app(
    readiness: Mapping[str, ReadinessCheck],
    routes: Sequence[BaseRoute] = (),
    registry: CollectorRegistry = REGISTRY,
    on_scrape: Sequence[ScrapeHook] = (),
    service: str = "",
) -> Starlette:
    """Probes and metrics, plus `routes`. A readiness check passes by returning; every check
    is also recorded in `genbus_dependency_up{service,dependency}` when `service` is named.
    The service is ready only when all pass (the dispatcher and poller do nothing without NATS).

    `on_scrape` hooks refresh gauges just before `/metrics` renders them.
    """

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        failures = await failing_checks(readiness)
        if service:
            for name in readiness:
                METRICS.dependency_up.labels(service, name).set(0 if name in failures else 1)
        if failures:
            return JSONResponse({"status": "unavailable", "failing": failures}, status_code=503)
        return JSONResponse({"status": "ready", "checks": sorted(readiness)})

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint(registry, on_scrape)),
            *routes,
        ]
    )
    app.add_middleware(HttpMetricsMiddleware)
    return app


async def failing_checks(readiness: Mapping[str, ReadinessCheck]) -> dict[str, str]:
    """The checks that fail (within 2 s each), with the name of the error each raised."""
    failures: dict[str, str] = {}
    for name, check in readiness.items():
        try:
            await asyncio.wait_for(check(), timeout=2.0)
        except Exception as exc:
            failures[name] = type(exc).__name__
    return failures


class _InLoopServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service's stop event owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(app: Starlette, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve `app` until `stop` is set. A port of 0 disables the server."""
    if port == 0:
        await stop.wait()
        return
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve(), name="http-server")
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if task in done and task.exception() is not None:
        log.error("http server failed", error=repr(task.exception()))
