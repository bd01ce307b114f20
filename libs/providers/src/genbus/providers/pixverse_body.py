"""Canonical params -> the body of a Pixverse generate request, checked against its limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genbus.providers.errors import InvalidRequest, UnsupportedOperation

DEFAULT_MODEL = "v4.5"
DEFAULT_QUALITY = "540p"
DEFAULT_DURATION = 5
DEFAULT_ASPECT_RATIO = "16:9"
DEFAULT_MOTION_MODE = "normal"
QUALITIES = frozenset({"360p", "540p", "720p", "1080p"})
DURATIONS = frozenset({5, 8})
MAX_SEED = 2**31 - 1  # Pixverse seeds are int32

#: canonical param → Pixverse body field. Params not listed here are not sent (Pixverse
#: rejects unknown values); provider-specific fields go through `provider_options`.
PARAM_FIELDS: Mapping[str, str] = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "quality": "quality",
    "duration": "duration",
    "aspect_ratio": "aspect_ratio",
    "seed": "seed",
    "model": "model",
    "motion_mode": "motion_mode",
}


def to_pixverse_body(
    operation_type: str, params: Mapping[str, Any], *, img_id: int | None = None
) -> dict[str, Any]:
    """The Pixverse generate body for canonical `params`: the one place they are translated.

    `img_id` is the uploaded image of an image_to_video request (omitted while None).
    `provider_options` are passed through (e.g. `style`, `template_id`, `water_mark`), but
    canonical params win over them and `img_id` is always ours.
    """
    options = params.get("provider_options") or {}
    if not isinstance(options, Mapping):
        raise InvalidRequest("provider_options must be an object")
    body: dict[str, Any] = {key: value for key, value in options.items() if value is not None}
    for param, field in PARAM_FIELDS.items():
        value = params.get(param)
        if value is not None:
            body[field] = value
    body.setdefault("model", DEFAULT_MODEL)
    body.setdefault("quality", DEFAULT_QUALITY)
    body.setdefault("duration", DEFAULT_DURATION)
    body.setdefault("motion_mode", DEFAULT_MOTION_MODE)
    body.pop("img_id", None)
    if operation_type == "text_to_video":
        # Required for text; image-to-video follows the image's own aspect ratio.
        body.setdefault("aspect_ratio", DEFAULT_ASPECT_RATIO)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("pixverse text_to_video needs a prompt")
    elif operation_type == "image_to_video":
        if img_id is not None:
            body["img_id"] = img_id
    else:
        raise UnsupportedOperation(f"pixverse does not support operation {operation_type!r}")
    _check_body(body)
    return body


def _check_body(body: dict[str, Any]) -> None:
    # Pixverse's documented limits, checked here so a request it would refuse is not spent.
    quality = body["quality"]
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise InvalidRequest(f"pixverse quality must be one of {sorted(QUALITIES)}")
    duration = body["duration"]
    if isinstance(duration, float) and duration.is_integer():
        duration = body["duration"] = int(duration)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration not in DURATIONS:
        raise InvalidRequest(f"pixverse duration must be one of {sorted(DURATIONS)} seconds")
    if quality == "1080p" and (duration != 5 or body["motion_mode"] == "fast"):
        raise InvalidRequest("pixverse 1080p supports only 5 s with motion_mode normal")
    if body["motion_mode"] == "fast" and duration != 5:
        raise InvalidRequest("pixverse motion_mode fast supports only 5 s")
    seed = body.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise InvalidRequest(f"pixverse seed must be an integer in [0, {MAX_SEED}]")
