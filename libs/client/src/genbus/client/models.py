# Generated from services/api/openapi.json by libs/client/codegen/generate_models.py
# (`make clients`): do not edit by hand.
# ruff: noqa: E501

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AnyUrl, AwareDatetime, BaseModel, ConfigDict, Field, RootModel


class AssetOut(BaseModel):
    """
    The output. Once genbus holds a copy (`stored`), `url` is the api's own download route,
    which works for as long as the generation exists; until then `url` is the provider's URL,
    which the provider deletes (`expires` is true).
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    url: Annotated[str, Field(title="Url")]
    """
    stored: `/api/v1/generations/{id}/asset`, relative to the api's base URL (needs your API key); not stored: the provider's URL (expires)
    """
    stored: Annotated[bool | None, Field(title="Stored")] = False
    """
    true: genbus holds a copy, served at `url`
    """
    expires: Annotated[bool | None, Field(title="Expires")] = True
    """
    true: `url` is the provider's and stops working soon
    """
    provider_url: Annotated[str | None, Field(title="Provider Url")] = None
    """
    where the provider published it (expires)
    """
    media_type: Annotated[str, Field(title="Media Type")]
    width: Annotated[int | None, Field(title="Width")]
    height: Annotated[int | None, Field(title="Height")]
    duration_s: Annotated[float | None, Field(title="Duration S")]
    sha256: Annotated[str | None, Field(title="Sha256")] = None
    """
    of the stored copy (also its download's ETag)
    """
    size_bytes: Annotated[int | None, Field(title="Size Bytes")] = None
    """
    of the stored copy
    """


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
    An input media item: a URL, an earlier generation of yours (its stored copy is used), or
    one of your uploads (`POST /api/v1/uploads`). Stored ones reach the provider as a presigned
    URL valid until the generation's deadline.
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    role: Annotated[str, Field(pattern="^[a-z][a-z0-9_]{0,31}$", title="Role")]
    url: Annotated[Url | None, Field(title="Url")] = None
    generation_id: Annotated[UUID | None, Field(title="Generation Id")] = None
    upload_id: Annotated[UUID | None, Field(title="Upload Id")] = None


class LimitsOut(BaseModel):
    """
    Your key's effective limits (its tier's, with the key's overrides); null: unlimited.
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    max_in_flight: Annotated[int | None, Field(title="Max In Flight")]
    """
    your generations running at once
    """
    daily_quota: Annotated[int | None, Field(title="Daily Quota")]
    """
    generations you may create per UTC day
    """
    max_priority: Annotated[int | None, Field(title="Max Priority")]
    """
    the highest `priority` you may ask for
    """
    providers: Annotated[list[str] | None, Field(title="Providers")]
    """
    the providers you may use
    """
    operations: Annotated[list[str] | None, Field(title="Operations")]
    """
    the operations you may use
    """
    models: Annotated[list[str] | None, Field(title="Models")]
    """
    the `params.model` values you may use
    """
    provider_options: Annotated[list[str] | None, Field(title="Provider Options")]
    """
    the `params.provider_options` keys you may use
    """


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
    on 422 (and 403 `not_entitled`): every field at fault
    """
    resets_at: Annotated[AwareDatetime | None, Field(title="Resets At")] = None
    """
    on 429 `quota_exceeded`: when the quota starts afresh (also `Retry-After`)
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


class TodayOut(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    created: Annotated[int, Field(title="Created")]
    """
    generations you created today (UTC), all keys
    """
    remaining: Annotated[int | None, Field(title="Remaining")]
    """
    left of your daily quota; null: no quota
    """
    resets_at: Annotated[AwareDatetime, Field(title="Resets At")]
    """
    when the day's quota starts afresh
    """


class UploadOut(BaseModel):
    """
    A stored file of yours, usable as `inputs[].upload_id`.
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    id: Annotated[UUID, Field(title="Id")]
    media_type: Annotated[str, Field(title="Media Type")]
    """
    what the bytes are (their signature, not the header)
    """
    size_bytes: Annotated[int, Field(title="Size Bytes")]
    sha256: Annotated[str, Field(title="Sha256")]
    filename: Annotated[str | None, Field(title="Filename")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]


class GroupBy(StrEnum):
    user = "user"
    account = "account"
    provider = "provider"


class UsageGroup(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    key: Annotated[str | None, Field(title="Key")]
    """
    the user, account or provider id (account: null for generations never submitted); null in `total`
    """
    generations: Annotated[int, Field(title="Generations")]
    """
    generations created in the range
    """
    completed: Annotated[int, Field(title="Completed")]
    estimated_cost: Annotated[float, Field(title="Estimated Cost")]
    """
    the sum of their estimated costs
    """
    actual_cost: Annotated[float, Field(title="Actual Cost")]
    """
    the sum of the costs providers reported
    """
    with_actual_cost: Annotated[int, Field(title="With Actual Cost")]
    """
    how many have a reported cost
    """


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
    estimated_cost: Annotated[float | None, Field(title="Estimated Cost")] = None
    """
    by the price table at creation, in the provider's unit (credits; Replicate: seconds of compute); null: no price configured
    """
    actual_cost: Annotated[float | None, Field(title="Actual Cost")] = None
    """
    as the provider reported it once ended; null: not reported
    """


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
    tier: Annotated[str, Field(title="Tier")]
    """
    your key's tier
    """
    limits: LimitsOut
    today: TodayOut


class UploadList(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
    )
    items: Annotated[list[UploadOut], Field(title="Items")]


class Usage(BaseModel):
    """
    Generations created in [`from`, `to`) and their costs, per group, and in total (costs
    in each provider's unit: credits; Replicate: seconds of compute).
    """

    model_config = ConfigDict(
        extra="ignore",
    )
    from_: Annotated[AwareDatetime, Field(alias="from", title="From")]
    to: Annotated[AwareDatetime, Field(title="To")]
    group_by: Annotated[GroupBy, Field(title="Group By")]
    groups: Annotated[list[UsageGroup], Field(title="Groups")]
    total: UsageGroup


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
