"""Errors the api's rules raise: each has a stable `code`; the HTTP edge translates them once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    """One problem with one request field, named by its dotted path (`params.prompt`)."""

    field: str
    code: str
    message: str


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(DomainError):
    """The request breaks one or more rules; `errors` names every field at fault."""

    code: ClassVar[str] = "validation_error"

    def __init__(self, errors: Sequence[FieldError], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)


class UnsupportedProvider(InvalidRequest):
    code: ClassVar[str] = "unsupported_provider"


class UnsupportedOperation(InvalidRequest):
    code: ClassVar[str] = "unsupported_operation"


class GenerationNotFound(DomainError):
    code: ClassVar[str] = "generation_not_found"


class GenerationTerminal(DomainError):
    code: ClassVar[str] = "generation_terminal"


class GenerationNotTerminal(DomainError):
    """Only a finished generation can be deleted."""

    code: ClassVar[str] = "generation_not_terminal"


class GenerationNotRetryable(DomainError):
    """Only a failed or cancelled generation can be retried."""

    code: ClassVar[str] = "generation_not_retryable"


class IdempotencyKeyReused(DomainError):
    """The key was already used by this user for a different request."""

    code: ClassVar[str] = "idempotency_key_reused"


class Unauthenticated(DomainError):
    """No valid API key (missing, malformed, unknown or revoked: the caller is not told which)."""

    code: ClassVar[str] = "unauthorized"


class RateLimited(DomainError):
    code: ClassVar[str] = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ApiKeyNotFound(DomainError):
    code: ClassVar[str] = "api_key_not_found"


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
    parts = [prefix] if prefix else []
    parts.extend(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
    return ".".join(parts).replace(".[", "[") or "body"


def field_errors_from(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Translate pydantic's errors into ours, each naming its field under `prefix`."""
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
