"""The api's FastAPI application: routers, error translation, body limit, and a lifespan that
runs the broker, consumers, outbox relay and reconciler alongside HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from genbus.api.bootstrap import ApiRuntime, bootstrap
from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.body_limit import BodySizeLimit
from genbus.api.entrypoints.http.problems import install_problem_handlers
from genbus.api.entrypoints.http.routes import generations, health, jobs


def create_app(settings: ApiSettings, runtime: ApiRuntime | None = None) -> FastAPI:
    """The app; `runtime` (default: `bootstrap(settings)`) starts and stops with its lifespan."""
    runtime = runtime if runtime is not None else bootstrap(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="genbus api", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(generations.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
