"""The admin listener: the admin API (`/admin`) and the web console (`/console`), apart from
the probes-and-metrics server, on GENBUS_DISPATCHER_ADMIN_HOST:ADMIN_PORT (loopback default).

It exists only when GENBUS_DISPATCHER_ADMIN_TOKEN is set. Kept off the probes port so that the
port a cluster exposes to kubelet and Prometheus never serves operations that change things.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from genbus.runtime.instrumentation import HttpMetricsMiddleware
from genbus.runtime.problems import http_problem_handler


def admin_app(admin: Sequence[BaseRoute], console: Sequence[BaseRoute] = ()) -> Starlette:
    async def root(_: object) -> Response:
        return RedirectResponse("/console/" if console else "/admin/status", status_code=303)

    app = Starlette(
        routes=[Route("/", root), *admin, *console],
        exception_handlers={HTTPException: http_problem_handler},
    )
    # Counted in genbus_http_requests_total / _seconds, exported on the probes' /metrics.
    app.add_middleware(HttpMetricsMiddleware)
    return app
