"""Errors the api's rules raise: each has a stable `code`; the HTTP edge translates them once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from genbus.runtime.problems import VALIDATION_ERROR, FieldError


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(DomainError):
    """The request breaks one or more rules; `errors` names every field at fault."""

    code: ClassVar[str] = VALIDATION_ERROR

    def __init__(self, errors: Sequence[FieldError], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)


class UnsupportedProvider(InvalidRequest):
    code: ClassVar[str] = "unsupported_provider"


class UnsupportedOperation(InvalidRequest):
    code: ClassVar[str] = "unsupported_operation"


class NotEntitled(InvalidRequest):
    """The caller's API key may not use what the request asks for (403); `errors` names it."""

    code: ClassVar[str] = "not_entitled"


class AdminOnly(DomainError):
    """The route is for admin API keys only (403)."""

    code: ClassVar[str] = "admin_only"


class InvalidLimits(DomainError, ValueError):
    """Limits (a tier, a key's overrides) that are not valid."""

    code: ClassVar[str] = "invalid_limits"


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


class RetryLater(DomainError):
    """Refused for now (429): the same request may succeed after `retry_after_s` seconds."""

    code: ClassVar[str] = "retry_later"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(RetryLater):
    code: ClassVar[str] = "rate_limited"


class Overloaded(RetryLater):
    """The service-wide backlog is at its bound: a new generation would only queue."""

    code: ClassVar[str] = "overloaded"


class TooManyPending(RetryLater):
    """This user's own backlog (pending, due generations) is at its bound."""

    code: ClassVar[str] = "too_many_pending"


class QuotaExceeded(RetryLater):
    """The key's quota of generations for the day is used up; it resets at `resets_at`."""

    code: ClassVar[str] = "quota_exceeded"

    def __init__(self, message: str, retry_after_s: float, resets_at: datetime) -> None:
        super().__init__(message, retry_after_s)
        self.resets_at = resets_at


class TooManyStreams(RetryLater):
    """Too many live-status streams open for this API key, or on this replica."""

    code: ClassVar[str] = "too_many_streams"


class ApiKeyNotFound(DomainError):
    code: ClassVar[str] = "api_key_not_found"
