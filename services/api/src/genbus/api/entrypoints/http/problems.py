"""The api's errors as `application/problem+json` (the format of every genbus HTTP surface:
`genbus.runtime.problems`, `docs/problems.md`), translated here, once.

A database that cannot be reached is a 503 `service_unavailable` with `Retry-After`, never a
500: the request may simply be sent again later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from genbus.api.domain.errors import (
    AdminOnly,
    DomainError,
    GenerationNotFound,
    GenerationNotRetryable,
    GenerationNotTerminal,
    GenerationTerminal,
    IdempotencyKeyReused,
    InvalidRequest,
    NotEntitled,
    QuotaExceeded,
    RetryLater,
    Unauthenticated,
)
from genbus.api.domain.rate_limit import retry_after_header
from genbus.runtime.logging import get_logger
from genbus.runtime.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldError,
    Problem,
    framework_http_problem,
    problem_body,
    problem_response,
    request_validation_problem,
)

log = get_logger(__name__)

#: What a client should wait before retrying when the database is unreachable.
UNAVAILABLE_RETRY_AFTER_S = 5

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotEntitled: 403,  # before InvalidRequest, its base
    AdminOnly: 403,
    InvalidRequest: 422,
    GenerationNotFound: 404,
    GenerationTerminal: 409,
    GenerationNotTerminal: 409,
    GenerationNotRetryable: 409,
    IdempotencyKeyReused: 409,
    Unauthenticated: 401,
    RetryLater: 429,
}


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    # Registered by class (not via `Exception`) so the answer is final, not re-raised.
    for infrastructure in (OSError, sqlalchemy.exc.SQLAlchemyError, asyncpg.PostgresError):
        app.add_exception_handler(infrastructure, _infrastructure_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
    status = next((s for t, s in _DOMAIN_STATUS.items() if isinstance(exc, t)), 400)
    errors = list(exc.errors) if isinstance(exc, InvalidRequest) else None
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="genbus"'
    if isinstance(exc, RetryLater):
        headers["Retry-After"] = retry_after_header(exc.retry_after_s)
    extra = {"resets_at": exc.resets_at.isoformat()} if isinstance(exc, QuotaExceeded) else None
    return problem_response(
        status, exc.code, exc.message, errors=errors, headers=headers, extra=extra
    )


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return request_validation_problem(exc.errors())


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    return framework_http_problem(exc)


async def _infrastructure_error(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        log.warning("database unavailable", path=request.url.path, error=repr(exc))
        return service_unavailable()
    return await _unexpected_error(request, exc)


def service_unavailable() -> JSONResponse:
    return problem_response(
        503,
        "service_unavailable",
        "the service cannot reach its database; retry later",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, error=repr(exc), exc_info=exc)
    return problem_response(500, "internal_error", "an unexpected error occurred")


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
    sqlalchemy.exc.TimeoutError,  # no pooled connection free in time
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # The connection bounds (`GENBUS_DB_*_TIMEOUT_S`): an overloaded database, retry later.
    asyncpg.QueryCanceledError,  # statement_timeout
    asyncpg.LockNotAvailableError,  # lock_timeout
    asyncpg.IdleInTransactionSessionTimeoutError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) means the database cannot be reached right now."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


# -- OpenAPI: the error responses each route documents, with an example each.

_EXAMPLES: dict[int, tuple[str, str]] = {
    401: ("unauthorized", "a valid API key is required: Authorization: Bearer gbk_..."),
    403: ("not_entitled", "priority: your API key allows at most 5"),
    404: ("generation_not_found", "generation 3f2b8c1e-0d4a-4c55-9a77-1b2c3d4e5f60 not found"),
    413: ("request_too_large", "the request body exceeds 65536 bytes"),
    429: ("rate_limited", "too many requests for this API key; retry after Retry-After"),
    503: ("service_unavailable", "the service cannot reach its database; retry later"),
}
_DESCRIPTIONS: dict[int, str] = {
    401: "No valid API key (missing, malformed, unknown or revoked)",
    403: "`not_entitled`: your API key's limits do not allow what the request asks for; "
    "`errors` names each field (`provider_id`, `operation_type`, `params.model`, `priority`, "
    "`params.provider_options.<key>`)",
    404: "No such generation, or not yours (never 403: others' generations do not exist for you)",
    409: "Conflict with the generation's current state",
    413: "Request body over the size limit",
    422: "Invalid request: `errors` names each field at fault",
    429: "Rate limit of this API key exceeded",
    503: "The database is unreachable: retry after `Retry-After` seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "the authentication scheme: Bearer",
            "schema": {"type": "string"},
        }
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
_VALIDATION_EXAMPLE = problem_body(
    422,
    "validation_error",
    "the request is invalid; see errors",
    [
        FieldError("params.prompt", "required", "Field required"),
        FieldError("params.fps", "unknown_field", "Extra inputs are not permitted"),
    ],
)


#: The 429 codes of the routes that create a generation (admission control).
OVERLOAD_CODES = {
    "overloaded": "the service's backlog is past its bound (too many generations waiting, or "
    "events not being delivered): retry after `Retry-After` seconds, computed from how fast "
    "the backlog drains (1..60)",
    "too_many_pending": "your own generations waiting to start are at their bound (when "
    "configured): retry after `Retry-After` seconds",
    "quota_exceeded": "your API key's generations for today (UTC) are used up: the quota "
    "resets at `resets_at` (the next UTC midnight; `Retry-After` seconds from now)",
}
_THROTTLE_EXAMPLES = {
    "overloaded": "the service is overloaded (too many generations waiting); retry after "
    "Retry-After",
    "too_many_pending": "you have 500 generations waiting (at most 500); retry after Retry-After",
    "too_many_streams": "this API key already has 20 live-status streams open (at most 20); "
    "close one, or retry after Retry-After",
    "quota_exceeded": "your API key's quota of 100 generations a day is used up; it resets "
    "at 2026-12-03T00:00:00+00:00",
}
_THROTTLE_EXTRA = {"quota_exceeded": {"resets_at": "2026-12-03T00:00:00+00:00"}}
_NOT_ENTITLED_EXAMPLE = problem_body(
    403,
    "not_entitled",
    "priority: your API key allows at most 5",
    [FieldError("priority", "not_entitled", "your API key allows at most 5")],
)
#: The 429 code of live-status streams.
STREAM_CODES = {
    "too_many_streams": "too many live-status streams open for this API key, or on this "
    "server: close one, or retry after `Retry-After` seconds",
}


def problem_responses(
    *statuses: int,
    conflicts: Mapping[str, str] | None = None,
    throttles: Mapping[str, str] | None = None,
    forbids: Mapping[str, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses; `conflicts` maps each 409 code to what
    it means on this route, `throttles` each 429 code besides `rate_limited`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status == 429 and throttles:
            code, detail = _EXAMPLES[429]
            examples = {code: {"value": problem_body(429, code, detail)}}
            examples.update(
                (
                    c,
                    {
                        "value": problem_body(
                            429, c, _THROTTLE_EXAMPLES.get(c, d), extra=_THROTTLE_EXTRA.get(c)
                        )
                    },
                )
                for c, d in throttles.items()
            )
        elif status == 422:
            examples = {"validation_error": {"value": _VALIDATION_EXAMPLE}}
        elif status == 403 and forbids:
            examples = {c: {"value": problem_body(403, c, d)} for c, d in forbids.items()}
        elif status == 403:
            examples = {"not_entitled": {"value": _NOT_ENTITLED_EXAMPLE}}
        elif status == 409:
            examples = {
                code: {"value": problem_body(409, code, detail)}
                for code, detail in (conflicts or {}).items()
            }
        else:
            code, detail = _EXAMPLES[status]
            examples = {code: {"value": problem_body(status, code, detail)}}
        description = _DESCRIPTIONS[status]
        if status == 409 and conflicts:
            description += ": " + "; ".join(f"`{c}`: {d}" for c, d in conflicts.items())
        if status == 403 and forbids:
            description = "; ".join(f"`{c}`: {d}" for c, d in forbids.items())
        if status == 429 and throttles:
            description = "`rate_limited`: " + description[0].lower() + description[1:]
            description += "; " + "; ".join(f"`{c}`: {d}" for c, d in throttles.items())
        response: dict[str, Any] = {
            "model": Problem,
            "description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"examples": examples}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses
