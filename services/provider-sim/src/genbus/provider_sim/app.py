"""The simulator's FastAPI app: routes plus the one place errors become HTTP responses."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genbus.provider_sim import routes_admin, routes_jobs, routes_pixverse
from genbus.provider_sim.config import SimConfig
from genbus.provider_sim.errors import ErrorCode, SimError
from genbus.provider_sim.inputs import InputLog
from genbus.provider_sim.state import Clock, SimState

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONCURRENCY_LIMIT: 429,
    ErrorCode.QUOTA_EXHAUSTED: 402,
    ErrorCode.CONTENT_REJECTED: 422,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
}


def create_app(config: SimConfig | None = None, *, clock: Clock = time.monotonic) -> FastAPI:
    """Build the simulator; its state is `app.state.sim` (a `SimState`)."""
    app = FastAPI(title="genbus provider simulator", version="0.1.0")
    app.state.sim = SimState(config if config is not None else SimConfig(), clock)
    app.state.inputs = InputLog()
    app.include_router(routes_jobs.router)
    app.include_router(routes_pixverse.router)
    app.include_router(routes_admin.router)
    app.add_exception_handler(SimError, _sim_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    return app


def error_response(error: SimError) -> JSONResponse:
    headers = None
    if error.retry_after_s is not None:
        headers = {"Retry-After": str(error.retry_after_s)}
    return JSONResponse(
        {"error": {"code": error.code.value, "message": error.message}},
        status_code=HTTP_STATUS[error.code],
        headers=headers,
    )


async def _sim_error(_: Request, exc: SimError) -> JSONResponse:
    return error_response(exc)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.INVALID_REQUEST
    )
    return error_response(SimError(code, str(exc.detail)))


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(SimError(ErrorCode.INVALID_REQUEST, str(exc.errors())))
