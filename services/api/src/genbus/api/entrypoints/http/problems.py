"""Errors as `application/problem+json` (RFC 9457) with a stable `code`: translated here, once."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from genbus.api.domain.errors import (
    DomainError,
    FieldError,
    GenerationNotFound,
    GenerationTerminal,
    InvalidRequest,
    field_errors_from_details,
)
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidRequest: 422,
    GenerationNotFound: 404,
    GenerationTerminal: 409,
}
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class FieldProblem(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}} for status in (404, 413, 422)
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:genbus:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "code": e.code, "message": e.message} for e in errors]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
    status = next((s for t, s in _DOMAIN_STATUS.items() if isinstance(exc, t)), 400)
    errors = list(exc.errors) if isinstance(exc, InvalidRequest) else None
    return problem_response(status, exc.code, exc.message, errors=errors)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    details = list(exc.errors())
    if any(d.get("type") == "json_invalid" for d in details):
        return _malformed_json()
    errors = field_errors_from_details(
        {**d, "loc": _without_source(tuple(d.get("loc", ())))} for d in details
    )
    return problem_response(
        422, InvalidRequest.code, "the request is invalid; see errors", errors=errors
    )


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    # FastAPI turns any failure to parse a JSON body other than a syntax error (bad UTF-8,
    # nesting too deep, a number too long) into a bare 400 caused by that failure.
    if exc.status_code == 400 and exc.__cause__ is not None:
        return _malformed_json()
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return problem_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, error=repr(exc), exc_info=exc)
    return problem_response(500, "internal_error", "an unexpected error occurred")


def _without_source(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`("body", "params", "prompt")` → `("params", "prompt")`: fields are named as sent."""
    return loc[1:] if loc and loc[0] in ("body", "path", "query", "header") else loc


def _malformed_json() -> JSONResponse:
    return problem_response(
        422,
        "malformed_json",
        "the request body is not valid JSON",
        errors=[FieldError("body", "malformed_json", "not valid JSON")],
    )
