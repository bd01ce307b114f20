"""The management API's errors as `application/problem+json` (`docs/problems.md`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from genbus.runtime.logging import get_logger
from genbus.runtime.problems import (
    FieldError,
    framework_http_problem,
    problem_response,
    request_validation_problem,
    validation_problem,
)
from genbus.webhooks.adapters.identity import (
    IdentityRateLimited,
    IdentityUnavailable,
    NotAuthenticated,
)
from genbus.webhooks.domain.addresses import UrlRefused
from genbus.webhooks.service_layer.endpoints import EndpointNotFound

log = get_logger(__name__)

RETRY_AFTER_S = "5"


class DeliveryNotFound(Exception):
    pass


def install_problem_handlers(app: FastAPI) -> None:
    # Each handler takes its own exception type: typed loosely here, as Starlette's API is.
    handlers: dict[type[Exception], Callable[[Request, Any], Awaitable[JSONResponse]]] = {
        RequestValidationError: _validation_error,
        HTTPException: _http_error,
        UrlRefused: _url_refused,
        EndpointNotFound: _not_found("endpoint_not_found"),
        DeliveryNotFound: _not_found("delivery_not_found"),
        NotAuthenticated: _unauthenticated,
        IdentityRateLimited: _rate_limited,
        IdentityUnavailable: _unavailable,
        OSError: _unavailable,
        sqlalchemy.exc.SQLAlchemyError: _unavailable,
        Exception: _unexpected,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return request_validation_problem(exc.errors())


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    return framework_http_problem(exc)


async def _url_refused(_: Request, exc: UrlRefused) -> JSONResponse:
    return validation_problem([FieldError("url", exc.code, exc.message)])


def _not_found(code: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(404, code, str(exc))

    return handler


async def _rate_limited(_: Request, exc: IdentityRateLimited) -> JSONResponse:
    return problem_response(429, "rate_limited", str(exc), headers={"Retry-After": exc.retry_after})


async def _unauthenticated(_: Request, exc: NotAuthenticated) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="genbus"'}
    return problem_response(401, "unauthorized", str(exc), headers=headers)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable", error=type(exc).__name__)
    return problem_response(
        503,
        "service_unavailable",
        "a dependency (the api or the database) is unavailable; retry later",
        headers={"Retry-After": RETRY_AFTER_S},
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", error=repr(exc), exc_info=exc)
    return problem_response(500, "internal_error", "an unexpected error; it has been logged")
