# Generated from services/api/openapi.json by libs/client/codegen/generate_models.py
# (`make clients`): do not edit by hand.
# ruff: noqa: E501

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AnyUrl, AwareDatetime, BaseModel, ConfigDict, Field, RootModel


class AssetOut(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    url: Annotated[str, Field(title="Url")]
    media_type: Annotated[str, Field(title="Media Type")]
    width: Annotated[int | None, Field(title="Width")]
    height: Annotated[int | None, Field(title="Height")]
    duration_s: Annotated[float | None, Field(title="Duration S")]


class ErrorOut(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    code: Annotated[str, Field(title="Code")]
    message: Annotated[str, Field(title="Message")]
    retryable: Annotated[bool, Field(title="Retryable")]


class FieldProblem(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    field: Annotated[str, Field(title="Field")]
    """
    the field at fault, as sent: `params.prompt`, `inputs[0].url`
    """
    code: Annotated[str, Field(title="Code")]
    """
    a stable machine code: `required`, `unknown_field`, ...
    """
    message: Annotated[str, Field(title="Message")]


class Name(RootModel[str]):
    root: Annotated[str, Field(max_length=200, min_length=1, title="Name")]


class PromptVersionId(RootModel[str]):
    root: Annotated[
        str,
        Field(pattern="^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", title="Prompt Version Id"),
    ]
    """
    Your own reference to the prompt version used; stored and returned.
    """


class GenerationStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class Health(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    status: Annotated[Literal["ok"], Field(title="Status")]


class Url(RootModel[AnyUrl]):
    root: Annotated[AnyUrl, Field(title="Url")]


class InputIn(BaseModel):
    """
    An input media item: a URL, or an earlier generation of yours (its asset is used).
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    role: Annotated[str, Field(pattern="^[a-z][a-z0-9_]{0,31}$", title="Role")]
    url: Annotated[Url | None, Field(title="Url")] = None
    generation_id: Annotated[UUID | None, Field(title="Generation Id")] = None


class Me(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    user_id: Annotated[str, Field(title="User Id")]
    key_id: Annotated[UUID | None, Field(title="Key Id")]
    """
    null for an anonymous call (local development)
    """
    key_prefix: Annotated[str | None, Field(title="Key Prefix")]
    """
    the key's first characters, as listed by keys list
    """
    admin: Annotated[bool, Field(title="Admin")]


class OperationType(StrEnum):
    text_to_video = "text_to_video"
    image_to_video = "image_to_video"
    video_extend = "video_extend"
    text_to_image = "text_to_image"
    image_to_image = "image_to_image"


class Problem(BaseModel):
    """
    The body of every error response (RFC 9457), with a stable machine `code`.
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    type: Annotated[str, Field(title="Type")]
    """
    `urn:genbus:problem:<code>`
    """
    title: Annotated[str, Field(title="Title")]
    status: Annotated[int, Field(title="Status")]
    detail: Annotated[str, Field(title="Detail")]
    code: Annotated[str, Field(title="Code")]
    errors: Annotated[list[FieldProblem] | None, Field(title="Errors")] = None
    """
    on 422: every field at fault
    """


class Status(StrEnum):
    ready = "ready"
    unavailable = "unavailable"


class Readiness(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    status: Annotated[Status, Field(title="Status")]
    checks: Annotated[dict[str, bool], Field(title="Checks")]


class WaitReason(StrEnum):
    """
    Why a generation is still `pending`: `scheduled` (its `scheduled_at` is ahead), or
    what the dispatcher last reported (`GenerationWaiting`: `retrying`,
    `provider_unavailable`, `user_at_capacity`), else `waiting_for_account` (due, waiting for
    a free slot of a provider account).
    """

    scheduled = "scheduled"
    waiting_for_account = "waiting_for_account"
    retrying = "retrying"
    provider_unavailable = "provider_unavailable"
    user_at_capacity = "user_at_capacity"


class GenerationCreate(BaseModel):
    """
    A generation request. Unknown fields, at any level, are refused (422 naming them).
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    operation_type: OperationType
    provider_id: Annotated[str, Field(max_length=64, min_length=1, title="Provider Id")]
    params: Annotated[dict[str, Any] | None, Field(title="Params")] = None
    """
    Validated per operation_type; provider-specific keys go in provider_options
    """
    inputs: Annotated[list[InputIn] | None, Field(max_length=8, title="Inputs")] = None
    priority: Annotated[int | None, Field(ge=0, le=10, title="Priority")] = 5
    """
    Dispatch priority, an integer 0..10 (default 5): HIGHER IS DISPATCHED FIRST. Of the generations that are due, the dispatcher takes the highest priority first; within a priority, the user with the fewest generations in flight (fair share), then that user's one due earliest; a generation with `scheduled_at` in the future is not dispatched before that time, whatever its priority.
    """
    scheduled_at: Annotated[AwareDatetime | None, Field(title="Scheduled At")] = None
    """
    not before this time
    """
    deadline: Annotated[AwareDatetime | None, Field(title="Deadline")] = None
    """
    terminal by this time; default: now + the configured default
    """
    name: Annotated[Name | None, Field(title="Name")] = None
    metadata: Annotated[dict[str, Any] | None, Field(title="Metadata")] = None
    """
    yours, stored and returned (at most 4 KiB as JSON)
    """
    prompt_version_id: Annotated[PromptVersionId | None, Field(title="Prompt Version Id")] = None


class GenerationPublic(BaseModel):
    """
    A generation as its owner sees it.
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    id: Annotated[UUID, Field(title="Id")]
    user_id: Annotated[str, Field(title="User Id")]
    """
    the owner
    """
    status: GenerationStatus
    """
    pending → processing → completed | failed | cancelled (terminal)
    """
    wait_reason: WaitReason | None
    """
    while pending: `scheduled` (scheduled_at is in the future), `retrying` (a try was refused before the provider took it; again at `next_attempt_at`), `provider_unavailable` (no account of its provider can take work: disabled, exhausted, cooling down or circuit breaker open), `user_at_capacity` (the caller has as many generations in flight as its cap allows), `waiting_for_account` (due, waiting for a free provider account slot); null otherwise
    """
    next_attempt_at: Annotated[AwareDatetime | None, Field(title="Next Attempt At")] = None
    """
    while `retrying`: when the dispatcher tries again
    """
    queue_position: Annotated[int | None, Field(title="Queue Position")] = None
    """
    while pending (on `GET /generations/{id}`): about how many generations the dispatcher will start before this one on the same provider and operation (priority, then fair share between users, then arrival); 0 is next. An estimate
    """
    estimated_start_at: Annotated[AwareDatetime | None, Field(title="Estimated Start At")] = None
    """
    while pending (on `GET /generations/{id}`): when it should start, from `queue_position` and how fast the provider's generations ended over the last minute; null when none ended in that window
    """
    operation_type: Annotated[str, Field(title="Operation Type")]
    provider_id: Annotated[str, Field(title="Provider Id")]
    params: Annotated[dict[str, Any], Field(title="Params")]
    """
    as sent
    """
    canonical_params: Annotated[dict[str, Any], Field(title="Canonical Params")]
    """
    validated, defaults filled
    """
    inputs: Annotated[list[dict[str, Any]], Field(title="Inputs")]
    """
    as sent
    """
    canonical_inputs: Annotated[list[dict[str, Any]], Field(title="Canonical Inputs")]
    """
    every input as a URL
    """
    priority: Annotated[int, Field(title="Priority")]
    """
    Dispatch priority, an integer 0..10 (default 5): HIGHER IS DISPATCHED FIRST. Of the generations that are due, the dispatcher takes the highest priority first; within a priority, the user with the fewest generations in flight (fair share), then that user's one due earliest; a generation with `scheduled_at` in the future is not dispatched before that time, whatever its priority.
    """
    scheduled_at: Annotated[AwareDatetime | None, Field(title="Scheduled At")]
    deadline_at: Annotated[AwareDatetime, Field(title="Deadline At")]
    name: Annotated[str | None, Field(title="Name")]
    metadata: Annotated[dict[str, Any], Field(title="Metadata")]
    reproducible_hash: Annotated[str, Field(title="Reproducible Hash")]
    attempt: Annotated[int, Field(title="Attempt")]
    account_id: Annotated[str | None, Field(title="Account Id")]
    provider_job_id: Annotated[str | None, Field(title="Provider Job Id")]
    asset: AssetOut | None
    error: ErrorOut | None
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    submitted_at: Annotated[AwareDatetime | None, Field(title="Submitted At")]
    completed_at: Annotated[AwareDatetime | None, Field(title="Completed At")]
    parent_generation_id: Annotated[UUID | None, Field(title="Parent Generation Id")]
    """
    the generation this one retries
    """
    prompt_version_id: Annotated[str | None, Field(title="Prompt Version Id")]


class JobCreate(BaseModel):
    """
    The legacy job request: a generation without inputs, schedule, deadline or name.
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    operation_type: OperationType
    provider_id: Annotated[str, Field(max_length=64, min_length=1, title="Provider Id")]
    params: Annotated[dict[str, Any] | None, Field(title="Params")] = None
    """
    Validated per operation_type; provider-specific keys go in provider_options
    """
    priority: Annotated[int | None, Field(ge=0, le=10, title="Priority")] = 5
    """
    Dispatch priority, an integer 0..10 (default 5): HIGHER IS DISPATCHED FIRST. Of the generations that are due, the dispatcher takes the highest priority first; within a priority, the user with the fewest generations in flight (fair share), then that user's one due earliest; a generation with `scheduled_at` in the future is not dispatched before that time, whatever its priority.
    """


class GenerationPage(BaseModel):
    """
    One page of generations, newest first. Pass `next_cursor` as `cursor` for the next page;
    null means this is the last page.
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    items: Annotated[list[GenerationPublic], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]
