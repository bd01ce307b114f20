"""The provider error taxonomy: what went wrong (a stable `code`) and what to do about it.

Adapters raise these; the dispatcher and poller act on `behaviour_of(exc)` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

import httpx

from genbus.contracts import ErrorInfo

_MAX_CODE = 64
_MAX_MESSAGE = 2000


class Behaviour(StrEnum):
    """What the caller does when a provider call raised."""

    RETRY = "retry"
    """Transient (timeout, 5xx, network): retry with backoff, spending an attempt."""
    BACK_OFF = "back_off"
    """Rate limited: cool the account down `retry_after_s`, requeue without spending an attempt."""
    ROTATE = "rotate"
    """Account is full (concurrency) or spent (quota): requeue, prefer another account."""
    DISABLE_ACCOUNT = "disable_account"
    """The account's credentials were refused: disable it until an operator fixes it."""
    FAIL = "fail"
    """The request itself is wrong or refused: fail the generation with the error's code."""


class ProviderError(Exception):
    """Base of every error an adapter raises. `code` is stable; `message` never holds secrets."""

    code: ClassVar[str] = "provider_error"

    def __init__(self, message: str = "", *, retry_after_s: float | None = None) -> None:
        self.message = message[:_MAX_MESSAGE]
        self.retry_after_s = retry_after_s
        super().__init__(self.message or self.code)

    @property
    def behaviour(self) -> Behaviour:
        """What the caller does about this error (see `BEHAVIOURS`)."""
        return behaviour_of(self)

    @property
    def retryable(self) -> bool:
        """Whether the generation may still succeed later (possibly on another account)."""
        return self.behaviour is not Behaviour.FAIL

    def to_error_info(self) -> ErrorInfo:
        """This error as the `ErrorInfo` carried by events."""
        return ErrorInfo(code=self.code[:_MAX_CODE], message=self.message, retryable=self.retryable)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"retry_after_s={self.retry_after_s!r})"
        )


class RateLimited(ProviderError):
    code = "rate_limited"


class ConcurrencyLimited(ProviderError):
    code = "concurrency_limit"


class QuotaExhausted(ProviderError):
    code = "quota_exhausted"


class AuthFailed(ProviderError):
    code = "unauthorized"


class ContentRejected(ProviderError):
    code = "content_rejected"


class InvalidRequest(ProviderError):
    code = "invalid_request"


class OutputRejected(ProviderError):
    """The provider's moderation refused the generated output (not the request).

    A new attempt generates a new output that may well pass, so this is retried, unlike
    `ContentRejected`, which refuses the request itself.
    """

    code = "output_rejected"


class ProviderUnavailable(ProviderError):
    """5xx, timeouts, connection errors and unreadable responses."""

    code = "provider_unavailable"


class SubmitOutcomeUnknown(ProviderUnavailable):
    """The job-creating request may have reached the provider and no answer was read.

    The provider may have created (and will bill) the job, so a blind resubmission can create a
    second one: the dispatcher resolves it with the provider (find by reference, or an
    idempotent replay) or ends the generation. It stays `RETRY` through `ProviderUnavailable`,
    which is right for every caller that does not create jobs.
    """

    code = "submit_outcome_unknown"


class UnsupportedOperation(ProviderError):
    code = "unsupported_operation"


class JobNotFound(ProviderError):
    """The provider does not know the job (any more): following it further cannot help."""

    code = "provider_job_not_found"


#: The one table of "error → behaviour". Lookup follows the class hierarchy, so an adapter's
#: own subclass of e.g. `RateLimited` inherits its behaviour.
BEHAVIOURS: Mapping[type[BaseException], Behaviour] = MappingProxyType(
    {
        RateLimited: Behaviour.BACK_OFF,
        ConcurrencyLimited: Behaviour.ROTATE,
        QuotaExhausted: Behaviour.ROTATE,
        AuthFailed: Behaviour.DISABLE_ACCOUNT,
        ContentRejected: Behaviour.FAIL,
        InvalidRequest: Behaviour.FAIL,
        UnsupportedOperation: Behaviour.FAIL,
        JobNotFound: Behaviour.FAIL,
        OutputRejected: Behaviour.RETRY,
        # Listed for the docs: retried only once resolved (never resubmitted blindly).
        SubmitOutcomeUnknown: Behaviour.RETRY,
        ProviderUnavailable: Behaviour.RETRY,
        # Unclassified provider trouble is treated as transient; attempts bound the retries.
        ProviderError: Behaviour.RETRY,
        # Raw network errors that escaped an adapter are transient too.
        httpx.TransportError: Behaviour.RETRY,
        TimeoutError: Behaviour.RETRY,
        ConnectionError: Behaviour.RETRY,
    }
)


def behaviour_of(exc: BaseException) -> Behaviour:
    """What to do about `exc`. Anything not in `BEHAVIOURS` is a bug: retrying would repeat it."""
    for cls in type(exc).__mro__:
        behaviour = BEHAVIOURS.get(cls)
        if behaviour is not None:
            return behaviour
    return Behaviour.FAIL
