"""Per-operation generation params: what each operation accepts, its defaults, canonical form.

Canonical params are the validated params with defaults filled in and unset values left out;
they are what providers receive and what the reproducible hash covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    Strict,
    StringConstraints,
    ValidationError,
    field_validator,
)

from genbus.api.domain.errors import InvalidRequest
from genbus.api.domain.json_values import encoded_size, json_problems
from genbus.runtime.problems import FieldError, field_errors_from


class OperationType(StrEnum):
    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"
    VIDEO_EXTEND = "video_extend"
    TEXT_TO_IMAGE = "text_to_image"
    IMAGE_TO_IMAGE = "image_to_image"


Quality = Literal["360p", "540p", "720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4"]

MAX_SEED = 2**63 - 1
MAX_PROVIDER_OPTIONS_BYTES = 8 * 1024
MAX_JSON_DEPTH = 8

_Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True)]
Prompt = Annotated[_Text, StringConstraints(min_length=1, max_length=4000)]
NegativePrompt = Annotated[_Text, StringConstraints(max_length=2000)]
Duration = Annotated[int, Strict(), Field(ge=1, le=60)]
Seed = Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)]
ModelName = Annotated[_Text, StringConstraints(min_length=1, max_length=100)]
MediaUrl = Annotated[HttpUrl, Field(max_length=2048)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Prompt | None = None
    negative_prompt: NegativePrompt | None = None
    quality: Quality = "720p"
    aspect_ratio: AspectRatio | None = None
    seed: Seed | None = None
    model: ModelName | None = None
    #: The one place for options only some provider understands; passed through as is.
    provider_options: Annotated[dict[str, Any], Strict()] = Field(default_factory=dict)

    @field_validator("negative_prompt")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None


class _VideoParams(_Params):
    duration: Duration = 5


class TextToVideoParams(_VideoParams):
    prompt: Prompt
    aspect_ratio: AspectRatio = "16:9"


class ImageToVideoParams(_VideoParams):
    #: Shorthand for an input with role "image"; canonicalised into the inputs.
    image_url: MediaUrl | None = None


class VideoExtendParams(_VideoParams):
    pass


class TextToImageParams(_Params):
    prompt: Prompt
    aspect_ratio: AspectRatio = "1:1"


class ImageToImageParams(_Params):
    image_url: MediaUrl | None = None


PARAMS_MODELS: Mapping[OperationType, type[_Params]] = {
    OperationType.TEXT_TO_VIDEO: TextToVideoParams,
    OperationType.IMAGE_TO_VIDEO: ImageToVideoParams,
    OperationType.VIDEO_EXTEND: VideoExtendParams,
    OperationType.TEXT_TO_IMAGE: TextToImageParams,
    OperationType.IMAGE_TO_IMAGE: ImageToImageParams,
}

#: The input role an operation cannot run without.
REQUIRED_INPUT_ROLE: Mapping[OperationType, str] = {
    OperationType.IMAGE_TO_VIDEO: "image",
    OperationType.IMAGE_TO_IMAGE: "image",
    OperationType.VIDEO_EXTEND: "video",
}
#: Param that may stand in for an input, and the role it stands for.
URL_PARAMS: Mapping[str, str] = {"image_url": "image"}


@dataclass(frozen=True)
class ValidParams:
    canonical: dict[str, Any]
    #: URL params (e.g. `image_url`) as `role → url`, to be moved into the inputs.
    url_inputs: dict[str, str]


def validate_params(operation_type: OperationType, params: Mapping[str, Any]) -> ValidParams:
    """Check `params` for `operation_type`; raise `InvalidRequest` naming every bad field."""
    problems = json_problems(dict(params), "params", max_depth=MAX_JSON_DEPTH + 1)
    if problems:
        raise InvalidRequest(problems)
    try:
        model = PARAMS_MODELS[operation_type].model_validate(dict(params))
    except ValidationError as exc:
        raise InvalidRequest(field_errors_from(exc, "params")) from None
    if encoded_size(model.provider_options) > MAX_PROVIDER_OPTIONS_BYTES:
        raise InvalidRequest(
            [
                FieldError(
                    "params.provider_options",
                    "too_large",
                    f"must be at most {MAX_PROVIDER_OPTIONS_BYTES} bytes as JSON",
                )
            ]
        )
    canonical = model.model_dump(mode="json", exclude_none=True, exclude=set(URL_PARAMS))
    if not canonical.get("provider_options"):
        canonical.pop("provider_options", None)
    url_inputs = {
        role: str(getattr(model, name))
        for name, role in URL_PARAMS.items()
        if getattr(model, name, None) is not None
    }
    return ValidParams(canonical, url_inputs)
