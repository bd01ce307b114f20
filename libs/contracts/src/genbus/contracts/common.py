"""Value types shared by several events."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, model_validator

#: A provider id is also the last token of every subject, so it must be a safe subject token.
PROVIDER_ID_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
#: Operation types are open-ended strings in events so that adding one is not a breaking change.
OPERATION_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"

ProviderId = Annotated[str, Field(pattern=PROVIDER_ID_PATTERN)]
OperationType = Annotated[str, Field(pattern=OPERATION_TYPE_PATTERN)]


class ContractModel(BaseModel):
    """Base of every contract model: immutable, and tolerant of fields added by newer producers."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CompletionStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WaitingReason(StrEnum):
    """Why the dispatcher holds a queued generation back (`GenerationWaiting.reason`)."""

    #: A try was refused or failed before the provider took it; tried again at `next_attempt_at`.
    RETRYING = "retrying"
    #: No account of its provider can take work now (disabled, exhausted, cooling down, or
    #: its circuit breaker open).
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    #: Its user has as many generations in flight as its cap (`max_in_flight`) allows.
    USER_AT_CAPACITY = "user_at_capacity"


class Asset(ContractModel):
    """Where a finished generation's output lives, and what it is."""

    url: AnyUrl
    media_type: str = Field(max_length=100)
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)
    duration_s: float | None = Field(default=None, ge=0)
    #: Since `GenerationCompleted` v2. False: `url` is the provider's own URL, which the
    #: provider deletes (Replicate after about an hour, others after a day or two): fetch it
    #: soon, or read the durable copy from the api (`GET /api/v1/generations/{id}/asset`).
    #: True: genbus holds a copy (`sha256`, `size_bytes`).
    stored: bool = Field(
        default=False,
        description="false: `url` is the provider's and expires; true: genbus stores a copy",
    )
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, ge=0)


class ErrorInfo(ContractModel):
    """Why a generation failed: a stable machine `code`, a human `message`."""

    code: str = Field(min_length=1, max_length=64)
    message: str = Field(default="", max_length=2000)
    retryable: bool = False


class InputRef(ContractModel):
    """An input media item: a URL, or the asset of an earlier generation."""

    role: str = Field(min_length=1, max_length=32)
    url: AnyUrl | None = None
    generation_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> InputRef:
        if (self.url is None) == (self.generation_id is None):
            raise ValueError("an input has exactly one of url or generation_id")
        return self
