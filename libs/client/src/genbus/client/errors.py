"""The API's errors (`application/problem+json`, docs/problems.md) as typed exceptions.

Every error carries the problem's stable `code`; the exception class says which HTTP status
family it is, so callers can catch `NotFound` or `RateLimited` and read `.code` for detail.
"""

from __future__ import annotations

from typing import Any

import httpx

from genbus.client.models import FieldProblem

PROBLEM_MEDIA_TYPE = "application/problem+json"


class GenbusError(Exception):
    """Anything this client raises on purpose."""


class ApiError(GenbusError):
    """The API answered with an error. `code` is the problem's stable machine code."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str = "",
        errors: list[FieldProblem] | None = None,
        retry_after_s: float | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.errors = errors or []
        self.retry_after_s = retry_after_s
        self.response = response


class Unauthorized(ApiError):
    """401: no valid API key."""


class NotFound(ApiError):
    """404: no such generation of yours."""


class Conflict(ApiError):
    """409: e.g. `generation_terminal`, `idempotency_key_reused`, `generation_not_retryable`."""


class PayloadTooLarge(ApiError):
    """413: the body is over the API's size limit."""


class ValidationFailed(ApiError):
    """422: `errors` names every field at fault (`field`, `code`, `message`)."""


class RateLimited(ApiError):
    """429: `rate_limited`, `overloaded`, `too_many_pending`, `too_many_streams`; wait
    `retry_after_s` before sending again."""


class ServiceUnavailable(ApiError):
    """503: the API cannot reach its database; `retry_after_s` says when to try again."""


class ServerError(ApiError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error response (problem+json or not)."""
    status = response.status_code
    body: dict[str, Any] = {}
    if response.headers.get("content-type", "").startswith(
        (PROBLEM_MEDIA_TYPE, "application/json")
    ):
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    errors = [FieldProblem.model_validate(e) for e in body.get("errors") or []]
    return kind(
        status,
        str(body.get("code") or f"http_{status}"),
        str(body.get("detail") or response.reason_phrase or "error"),
        title=str(body.get("title") or ""),
        errors=errors,
        retry_after_s=_retry_after(response),
        response=response,
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class StreamError(GenbusError):
    """A live-status stream could not be resumed."""


class WebhookVerificationError(GenbusError):
    """A webhook request's signature, timestamp or headers did not verify."""
