"""Request bodies of the HTTP API, and their translation to the domain."""

from __future__ import annotations

from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

from genbus.api.domain.params import MediaUrl, OperationType
from genbus.api.domain.requests import DEFAULT_PRIORITY, GenerationDraft, InputSpec

MAX_INPUTS = 8

Role = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ProviderIdIn = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=64)]
#: The one definition of priority's direction; every other mention refers to this one.
PRIORITY_DOC = (
    "Dispatch priority, an integer 0..10 (default 5): HIGHER IS DISPATCHED FIRST. Of the "
    "generations that are due, the dispatcher takes the highest priority first; within a "
    "priority, the user with the fewest generations in flight (fair share), then that user's "
    "one due earliest; a generation with `scheduled_at` in the future is not dispatched before "
    "that time, whatever its priority."
)
Priority = Annotated[int, Strict(), Field(ge=0, le=10, description=PRIORITY_DOC)]
PromptVersionId = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(description="Your own reference to the prompt version used; stored and returned."),
]
Params = Annotated[
    dict[str, Any],
    Strict(),
    Field(
        description="Validated per operation_type; provider-specific keys go in provider_options"
    ),
]
Name = Annotated[
    str, Strict(), StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputIn(_Body):
    """An input media item: a URL, an earlier generation of yours (its stored copy is used), or
    one of your uploads (`POST /api/v1/uploads`). Stored ones reach the provider as a presigned
    URL valid until the generation's deadline."""

    role: Role
    url: MediaUrl | None = None
    generation_id: UUID | None = None
    upload_id: UUID | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        given = [v for v in (self.url, self.generation_id, self.upload_id) if v is not None]
        if len(given) != 1:
            raise ValueError("an input has exactly one of url, generation_id or upload_id")
        return self

    def to_domain(self) -> InputSpec:
        url = str(self.url) if self.url is not None else None
        return InputSpec(
            role=self.role, url=url, generation_id=self.generation_id, upload_id=self.upload_id
        )


_T2V_EXAMPLE: dict[str, Any] = {
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {
        "prompt": "a lighthouse at dusk, waves crashing",
        "negative_prompt": "blurry",
        "duration": 5,
        "quality": "720p",
        "aspect_ratio": "16:9",
        "seed": 42,
    },
    "priority": 7,
    "name": "lighthouse",
    "metadata": {"campaign": "spring"},
}


class GenerationCreate(_Body):
    """A generation request. Unknown fields, at any level, are refused (422 naming them)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                _T2V_EXAMPLE,
                {
                    "operation_type": "image_to_video",
                    "provider_id": "sim",
                    "params": {"prompt": "the cat turns its head", "duration": 5},
                    "inputs": [{"role": "image", "url": "https://example.com/cat.png"}],
                    "prompt_version_id": "cat-v3",
                },
            ]
        },
    )

    operation_type: OperationType
    provider_id: ProviderIdIn
    params: Params = Field(default_factory=dict)
    inputs: Annotated[list[InputIn], Field(max_length=MAX_INPUTS)] = Field(default_factory=list)
    priority: Priority = DEFAULT_PRIORITY
    scheduled_at: AwareDatetime | None = Field(default=None, description="not before this time")
    deadline: AwareDatetime | None = Field(
        default=None, description="terminal by this time; default: now + the configured default"
    )
    name: Name | None = None
    metadata: Annotated[dict[str, Any], Strict()] = Field(
        default_factory=dict, description="yours, stored and returned (at most 4 KiB as JSON)"
    )
    prompt_version_id: PromptVersionId | None = None

    def to_draft(self) -> GenerationDraft:
        return GenerationDraft(
            operation_type=self.operation_type,
            provider_id=self.provider_id,
            params=self.params,
            inputs=[i.to_domain() for i in self.inputs],
            priority=self.priority,
            scheduled_at=self.scheduled_at,
            deadline=self.deadline,
            name=self.name,
            metadata=self.metadata,
            prompt_version_id=self.prompt_version_id,
        )


class JobCreate(_Body):
    """The legacy job request: a generation without inputs, schedule, deadline or name."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "operation_type": "text_to_video",
                    "provider_id": "sim",
                    "params": {"prompt": "test video", "quality": "720p"},
                }
            ]
        },
    )

    operation_type: OperationType
    provider_id: ProviderIdIn
    params: Params = Field(default_factory=dict)
    priority: Priority = DEFAULT_PRIORITY

    def to_draft(self) -> GenerationDraft:
        return GenerationDraft(
            operation_type=self.operation_type,
            provider_id=self.provider_id,
            params=self.params,
            priority=self.priority,
        )
