"""The adapter protocol every provider implements, and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from genbus.contracts import Asset, ErrorInfo, InputRef
from genbus.providers.credentials import Credentials


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True once the job can no longer change."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True, kw_only=True)
class SubmitRequest:
    """One submission attempt of a generation to a provider account.

    `params` are canonical (prompt, negative_prompt, quality, duration, aspect_ratio, seed,
    model, provider_options, ...); each adapter translates them to its provider's API.
    """

    generation_id: UUID
    operation_type: str
    params: dict[str, Any]
    idempotency_key: str
    credentials: Credentials
    inputs: list[InputRef] = field(default_factory=list)
    base_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class SubmitResult:
    """The provider accepted the job. `replayed`: it was an idempotent replay of an earlier one."""

    provider_job_id: str
    status: str
    replayed: bool = False
    #: The credits the provider says the job costs, where its submit answer tells (Pixverse).
    cost: float | None = None


@dataclass(frozen=True, kw_only=True)
class SubmitGuarantees:
    """What a provider promises about job creation: how an unanswered submit can be resolved."""

    idempotent: bool
    """The same idempotency key submitted again returns the original job, never a second one."""
    findable_by_reference: bool
    """`find_by_reference()` can tell whether this generation attempt's job exists."""


@dataclass(frozen=True, kw_only=True)
class ProviderJobRef:
    """Enough to reach one provider job again: its id and the account that owns it."""

    provider_job_id: str
    credentials: Credentials
    base_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobStatus:
    """Where a provider job stands. A succeeded job has an asset; a failed one has an error.

    `retry_after_s` is the provider's hint for when to poll again, if it gave one. `cost` is
    what the provider says the job used, in its billing unit (credits; Replicate: seconds of
    compute), where its API reports it.
    """

    state: JobState
    progress: float | None = None
    asset: Asset | None = None
    error: ErrorInfo | None = None
    retry_after_s: float | None = None
    cost: float | None = None

    def __post_init__(self) -> None:
        if self.state is JobState.SUCCEEDED and self.asset is None:
            raise ValueError("a succeeded job carries an asset")
        if self.state is JobState.FAILED and self.error is None:
            raise ValueError("a failed job carries an error")
        if self.progress is not None and not 0.0 <= self.progress <= 1.0:
            raise ValueError("progress is between 0 and 1")
        if self.cost is not None and self.cost < 0:
            raise ValueError("a cost is not negative")

    @property
    def terminal(self) -> bool:
        """True once the job can no longer change."""
        return self.state.terminal


class ProviderAdapter(Protocol):
    """A client of one provider's API. Every method raises only `ProviderError` subclasses.

    One instance serves every account of its provider: credentials and base URL travel with
    each call, while the pooled keep-alive HTTP client is shared.
    """

    @property
    def provider_id(self) -> str:
        """The provider id used in subjects and account records, e.g. "sim"."""
        ...

    @property
    def submit_guarantees(self) -> SubmitGuarantees:
        """Whether `submit` is idempotent and whether `find_by_reference` works."""
        ...

    def supports(self, operation_type: str) -> bool:
        """Whether this provider can run `operation_type`."""
        ...

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """Create the job (idempotently, by `request.idempotency_key`, where the provider can).

        Raises `SubmitOutcomeUnknown` when the request may have reached the provider and no
        answer was read: the job may exist, so never resubmit it blindly.
        """
        ...

    async def find_by_reference(self, request: SubmitRequest) -> SubmitResult | None:
        """The job `request` created, or None when the provider has none.

        Raises `UnsupportedOperation` where `submit_guarantees.findable_by_reference` is False.
        """
        ...

    async def status(self, job: ProviderJobRef) -> JobStatus:
        """The job's current state."""
        ...

    async def cancel(self, job: ProviderJobRef) -> None:
        """Ask the provider to cancel the job; `status` reports the outcome."""
        ...

    async def balance(self, credentials: Credentials, base_url: str | None = None) -> int | None:
        """The account's credits left, where the provider's API tells (None: it does not, or
        the account is unlimited)."""
        ...

    async def aclose(self) -> None:
        """Close the HTTP client."""
        ...
