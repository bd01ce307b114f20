"""Errors as `application/problem+json` (RFC 9457): one shape for every genbus HTTP surface.

The format (documented in `docs/problems.md`): `type` is `urn:genbus:problem:<code>`, `title`
the status's reason phrase, `status`, a human `detail`, a stable machine `code`, and on a 422
`errors`, one `{field, code, message}` per field at fault, named as sent (`params.prompt`,
`inputs[0].url`). A body is never echoed back: it may hold a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:genbus:problem:"
#: The `code` of a 422 whose `errors` name the fields at fault.
VALIDATION_ERROR = "validation_error"
#: The `code` of a body that is not JSON at all.
MALFORMED_JSON = "malformed_json"

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


@dataclass(frozen=True)
class FieldError:
    """One problem with one request field, named by its dotted path (`params.prompt`)."""

    field: str
    code: str
    message: str


class FieldProblem(BaseModel):
    field: str = Field(description="the field at fault, as sent: `params.prompt`, `inputs[0].url`")
    code: str = Field(description="a stable machine code: `required`, `unknown_field`, ...")
    message: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457), with a stable machine `code`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:genbus:problem:generation_not_found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "generation 3f2b8c1e-0d4a-4c55-9a77-1b2c3d4e5f60 not found",
                    "code": "generation_not_found",
                }
            ]
        }
    )

    type: str = Field(description="`urn:genbus:problem:<code>`")
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] | None = Field(
        default=None, description="on 422 (and 403 `not_entitled`): every field at fault"
    )
    resets_at: AwareDatetime | None = Field(
        default=None,
        description="on 429 `quota_exceeded`: when the quota starts afresh (also `Retry-After`)",
    )


def problem_body(
    status: int,
    code: str,
    detail: str,
    errors: Sequence[FieldError] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a problem; `errors` (and each `extra` member) present only when given."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "code": e.code, "message": e.message} for e in errors]
    body.update(extra or {})
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, errors, extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def validation_problem(errors: Sequence[FieldError]) -> JSONResponse:
    """422: the request is well-formed JSON but breaks the rules; `errors` says where."""
    return problem_response(
        422, VALIDATION_ERROR, "the request is invalid; see errors", errors=errors
    )


def malformed_json() -> JSONResponse:
    return problem_response(
        422,
        MALFORMED_JSON,
        "the request body is not valid JSON",
        errors=[FieldError("body", MALFORMED_JSON, "not valid JSON")],
    )


def http_problem(exc: HTTPException) -> JSONResponse:
    """A framework HTTP error (unknown route, wrong method, ...) as a problem."""
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return problem_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def http_problem_handler(_: Request, exc: Exception) -> Response:
    """Starlette exception handler for `HTTPException`."""
    assert isinstance(exc, HTTPException)
    return http_problem(exc)


# pydantic error type → our stable field error code
_PYDANTIC_CODES: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_too_long": "out_of_range",
    "string_too_short": "out_of_range",
    "too_long": "out_of_range",
    "too_short": "out_of_range",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "string_pattern_mismatch": "invalid_format",
    "url_parsing": "invalid_url",
    "url_scheme": "invalid_url",
    "url_too_long": "invalid_url",
    "url_type": "invalid_url",
    "uuid_parsing": "invalid_format",
    "uuid_type": "invalid_type",
    "datetime_parsing": "invalid_format",
    "datetime_from_date_parsing": "invalid_format",
    "timezone_aware": "timezone_required",
}


def field_path(loc: Iterable[str | int], prefix: str = "") -> str:
    """`("inputs", 0, "url")` → `inputs[0].url`; nothing at all is the whole `body`."""
    parts = [prefix] if prefix else []
    parts.extend(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
    return ".".join(parts).replace(".[", "[") or "body"


def field_errors_from(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Translate pydantic's errors into ours, each naming its field under `prefix`.

    Never the input: it may hold a secret (a credential, a prompt).
    """
    return field_errors_from_details(exc.errors(include_url=False, include_input=False), prefix)


def field_errors_from_details(
    details: Iterable[Mapping[str, Any]], prefix: str = ""
) -> list[FieldError]:
    """Like `field_errors_from`, for pydantic error dicts (as FastAPI reports them)."""
    errors = []
    for error in details:
        kind = str(error.get("type", ""))
        code = _PYDANTIC_CODES.get(kind, "invalid_type" if kind.endswith("_type") else "invalid")
        loc = error.get("loc", ())
        errors.append(FieldError(field_path(loc, prefix), code, str(error.get("msg", ""))))
    return errors


#: Where FastAPI says a bad value came from: the first part of an error's `loc`, not a field.
_REQUEST_SOURCES = ("body", "path", "query", "header")


def request_validation_problem(details: Iterable[Mapping[str, Any]]) -> JSONResponse:
    """The answer to FastAPI's `RequestValidationError` (its `errors()`): a body that is not
    JSON at all is `malformed_json`; otherwise 422 naming each field as it was sent
    (`("body", "params", "prompt")` is `params.prompt`)."""
    details = list(details)
    if any(d.get("type") == "json_invalid" for d in details):
        return malformed_json()
    return validation_problem(
        field_errors_from_details({**d, "loc": _without_source(d.get("loc", ()))} for d in details)
    )


def _without_source(loc: Iterable[str | int]) -> tuple[str | int, ...]:
    parts = tuple(loc)
    return parts[1:] if parts and parts[0] in _REQUEST_SOURCES else parts


def problems_as_problem_json(spec: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI document whose error responses are documented as `application/problem+json`
    only: FastAPI also lists their model under `application/json`, which they never are."""
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                    schema = content.pop("application/json").get("schema")
                    if schema is not None:
                        content[PROBLEM_MEDIA_TYPE]["schema"] = schema
    return spec


def framework_http_problem(exc: HTTPException) -> JSONResponse:
    """An `HTTPException` as problem+json. FastAPI turns any failure to parse a JSON body other
    than a syntax error (bad UTF-8, nesting too deep, a number too long) into a bare 400 caused
    by that failure: that is `malformed_json` too."""
    if exc.status_code == 400 and exc.__cause__ is not None:
        return malformed_json()
    return http_problem(exc)


def document_problems_as_problem_json(app: Any) -> None:
    """Make a FastAPI app's OpenAPI document list its error responses as problem+json only
    (`problems_as_problem_json`, applied once to the document FastAPI builds and caches)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        return problems_as_problem_json(build())

    app.openapi = openapi  # a FastAPI app: its documented way to customise the document
