"""The adapter for Pixverse's platform API (https://docs.platform.pixverse.ai, OpenAPI v2).

Every Pixverse response is an envelope `{"ErrCode": int, "ErrMsg": str, "Resp": {...}}`;
an `ErrCode` other than 0 is an error whatever the HTTP status. Requests carry `API-KEY` and
an `Ai-trace-id` (a UUID, required by Pixverse).

Idempotency: Pixverse has no idempotency header and no lookup by our reference. A generate
request's `Ai-trace-id` is derived from our idempotency key (`pixverse_trace_id`), so a replay of
one attempt carries the same trace id and can be traced on their side; every other request gets
a fresh one, as their docs ask (a repeated trace id on status calls returns a stale answer). A
generate call that may have reached Pixverse without an answer we could read (a timeout or lost
connection after sending, a 502/504, an accepted answer without a video id) is reported as
`SubmitOutcomeUnknown`, and the dispatcher never resubmits it blindly: with nothing to look up
or replay safely, it ends the generation (`submission_outcome_unknown`) rather than risk a
second billed job. The image upload creates no job and stays `ProviderUnavailable` (retried).
A crash between "Pixverse accepted" and "we recorded it" can still cost a second job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final
from uuid import UUID, uuid4, uuid5

import httpx
from pydantic import ValidationError

from genbus.contracts import Asset, ErrorInfo, InputRef
from genbus.providers._http import HttpAdapter, parse_retry_after
from genbus.providers.credentials import Credentials
from genbus.providers.errors import (
    AuthFailed,
    ConcurrencyLimited,
    ContentRejected,
    InvalidRequest,
    JobNotFound,
    OutputRejected,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    SubmitOutcomeUnknown,
    UnsupportedOperation,
)
from genbus.providers.protocol import (
    JobState,
    JobStatus,
    ProviderJobRef,
    SubmitGuarantees,
    SubmitRequest,
    SubmitResult,
)

PIXVERSE_DEFAULT_BASE_URL = "https://app-api.pixverse.ai"
PIXVERSE_OPERATIONS = frozenset({"text_to_video", "image_to_video"})

TEXT_TO_VIDEO_PATH = "/openapi/v2/video/text/generate"
IMAGE_TO_VIDEO_PATH = "/openapi/v2/video/img/generate"
IMAGE_UPLOAD_PATH = "/openapi/v2/image/upload"
VIDEO_RESULT_PATH = "/openapi/v2/video/result/"

_GENERATE_PATHS: Mapping[str, str] = {
    "text_to_video": TEXT_TO_VIDEO_PATH,
    "image_to_video": IMAGE_TO_VIDEO_PATH,
}

# -- canonical params → Pixverse body -------------------------------------------------------

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

# -- Pixverse answers → our taxonomy --------------------------------------------------------

#: Pixverse `ErrCode` → error. Codes not listed are `ProviderError` (retried, code in message).
ERR_CODES: Mapping[int, type[ProviderError]] = {
    10002: AuthFailed,  # API key invalid
    10003: AuthFailed,  # API key expired
    10005: AuthFailed,  # API key without permission
    400017: InvalidRequest,  # parameter too long / invalid
    400018: InvalidRequest,
    400019: InvalidRequest,
    500043: QuotaExhausted,  # all credits used
    500090: QuotaExhausted,  # insufficient balance
    500044: ConcurrencyLimited,  # concurrent generation limit reached
    500052: ContentRejected,  # uploaded image refused by moderation
    500063: ContentRejected,  # prompt refused by moderation
    500054: OutputRejected,  # generated output refused by moderation: a retry may pass
    500069: ProviderUnavailable,  # system overloaded
}
#: `ErrCode`s meaning "no such data": on a status call, the job is gone.
NOT_FOUND_ERR_CODES = frozenset({500008})

#: `Resp.status` of a video, except 10 (see `_job_status`).
RUNNING_STATUSES = frozenset({0, 2, 5})
SUCCEEDED_STATUSES = frozenset({1})
FILTERED_STATUSES = frozenset({3, 7, 17})
FAILED_STATUSES = frozenset({-1, 4, 8, 9})
_MAYBE_DONE = 10  # done once the output has non-zero dimensions, still processing before

MEDIA_TYPE = "video/mp4"
_TRACE_NAMESPACE: Final = UUID("0b3e6a64-8f0f-4a4e-a7f5-6f1f3d5e2c91")
_IMAGE_ROLES = ("image", "first_frame")


class PixverseAdapter(HttpAdapter):
    """Client of Pixverse's platform API: text- and image-to-video, status. No cancel."""

    provider_id: ClassVar[str] = "pixverse"
    operations: ClassVar[frozenset[str]] = PIXVERSE_OPERATIONS
    submit_guarantees: ClassVar[SubmitGuarantees] = SubmitGuarantees(
        idempotent=False, findable_by_reference=False
    )

    def __init__(
        self,
        *,
        base_url: str | None = PIXVERSE_DEFAULT_BASE_URL,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        super().__init__(base_url=base_url, timeout=timeout, transport=transport, limits=limits)

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """Upload the input image if any, then POST the generate call; returns the video id.

        Pixverse never tells a replay from a new job, so `replayed` is always False. Only the
        generate call creates a (billed) job, so only it can raise `SubmitOutcomeUnknown`.
        """
        operation = request.operation_type
        if not self.supports(operation):
            raise UnsupportedOperation(f"pixverse does not support operation {operation!r}")
        base_url = self._base_url(request.base_url)
        credentials = request.credentials
        body = to_pixverse_body(operation, request.params)  # refuses bad params before any call
        if operation == "image_to_video":
            img_id = await self._upload_image(base_url, credentials, _image_url(request.inputs))
            body = to_pixverse_body(operation, request.params, img_id=img_id)
        headers = {
            **_auth_headers(credentials),
            "Ai-trace-id": pixverse_trace_id(request.idempotency_key),
        }
        response = await self._send(
            "POST",
            f"{base_url}{_GENERATE_PATHS[operation]}",
            credentials=credentials,
            headers=headers,
            json=body,
            creates_job=True,
        )
        resp = _resp(
            response, credentials, not_found=ProviderUnavailable, unreadable=SubmitOutcomeUnknown
        )
        video_id = _positive_int(resp.get("video_id"))
        if video_id is None:
            raise SubmitOutcomeUnknown("pixverse accepted a video without a video_id")
        return SubmitResult(provider_job_id=str(video_id), status=JobState.QUEUED.value)

    async def status(self, job: ProviderJobRef) -> JobStatus:
        """GET /openapi/v2/video/result/{id}, translated to a `JobStatus`."""
        video_id = job.provider_job_id
        if not video_id.isascii() or not video_id.isdigit():
            raise JobNotFound(f"{video_id!r} is not a Pixverse video id")
        response = await self._send(
            "GET",
            f"{self._base_url(job.base_url)}{VIDEO_RESULT_PATH}{video_id}",
            credentials=job.credentials,
            headers=_headers(job.credentials),
        )
        retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
        try:
            resp = _resp(response, job.credentials, not_found=JobNotFound)
        except OutputRejected as exc:
            # On the result endpoint this is the job's outcome: it ended without a usable
            # output, and a new attempt may well pass moderation.
            return JobStatus(
                state=JobState.FAILED,
                error=exc.to_error_info(),
                retry_after_s=retry_after_s,
            )
        return _job_status(resp, retry_after_s=retry_after_s)

    async def cancel(self, job: ProviderJobRef) -> None:
        """No-op: Pixverse has no cancel endpoint. The poller follows the job to its end."""

    async def _upload_image(self, base_url: str, credentials: Credentials, image_url: str) -> int:
        # Pixverse generates from an uploaded image id; it fetches the image from the URL.
        response = await self._send(
            "POST",
            f"{base_url}{IMAGE_UPLOAD_PATH}",
            credentials=credentials,
            headers=_headers(credentials),
            files={"image_url": (None, image_url)},
        )
        resp = _resp(response, credentials, not_found=ProviderUnavailable)
        img_id = _positive_int(resp.get("img_id"))
        if img_id is None:
            raise ProviderUnavailable("pixverse accepted an image upload without an img_id")
        return img_id


def pixverse_trace_id(idempotency_key: str) -> str:
    """The `Ai-trace-id` of a generate request: a UUID derived from our idempotency key.

    A key that already is a UUID is sent as is; any other key maps to the same UUID every time.
    """
    try:
        return str(UUID(idempotency_key))
    except ValueError:
        return str(uuid5(_TRACE_NAMESPACE, idempotency_key))


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


def _image_url(inputs: Sequence[InputRef]) -> str:
    images = [item for item in inputs if item.role in _IMAGE_ROLES] or list(inputs[:1])
    if not images:
        raise InvalidRequest("image_to_video needs an image input")
    if images[0].url is None:
        # An input naming an earlier generation must be resolved to its asset URL first.
        raise InvalidRequest(f"input {images[0].role!r} has no url")
    return str(images[0].url)


def _auth_headers(credentials: Credentials) -> dict[str, str]:
    api_key = credentials.get("api_key")
    if not api_key:
        raise AuthFailed("pixverse credentials have no api_key")
    return {"API-KEY": api_key}


def _headers(credentials: Credentials) -> dict[str, str]:
    return {**_auth_headers(credentials), "Ai-trace-id": str(uuid4())}


def _resp(
    response: httpx.Response,
    credentials: Credentials,
    *,
    not_found: type[ProviderError],
    unreadable: type[ProviderError] = ProviderUnavailable,
) -> dict[str, Any]:
    """`Resp` of a successful envelope; otherwise the error the response stands for.

    `unreadable`: the error for a success status whose body is not a Pixverse envelope.
    """
    status = response.status_code
    retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
    err_code, err_msg, resp = _envelope(response)
    detail = credentials.redact(err_msg) if err_msg else response.reason_phrase
    if status == 429:
        raise RateLimited(f"pixverse HTTP 429: {detail}", retry_after_s=retry_after_s)
    if err_code is not None and err_code != 0:
        if err_code in NOT_FOUND_ERR_CODES:
            error_class: type[ProviderError] = not_found
        else:
            error_class = ERR_CODES.get(err_code, ProviderError)
        raise error_class(
            f"pixverse ErrCode {err_code} (HTTP {status}): {detail}", retry_after_s=retry_after_s
        )
    if not response.is_success:
        if status in (401, 403):
            error_class = AuthFailed
        elif status == 404:
            error_class = not_found
        elif 400 <= status < 500 and status != 408:
            error_class = InvalidRequest
        else:
            error_class = ProviderUnavailable
        raise error_class(f"pixverse HTTP {status}: {detail}", retry_after_s=retry_after_s)
    if err_code is None or not isinstance(resp, dict):
        raise unreadable(f"pixverse HTTP {status}: not a Pixverse response envelope")
    return resp


def _envelope(response: httpx.Response) -> tuple[int | None, str, object]:
    try:
        data = response.json()
    except ValueError:
        return None, "", None
    if not isinstance(data, dict):
        return None, "", None
    # Pixverse documents upload refusals with lower-case keys (`err_code`, `err_msg`).
    code = data.get("ErrCode", data.get("err_code"))
    message = data.get("ErrMsg", data.get("err_msg"))
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else "",
        data.get("Resp", data.get("resp")),
    )


def _job_status(resp: Mapping[str, Any], *, retry_after_s: float | None) -> JobStatus:
    code = resp.get("status")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ProviderUnavailable(f"pixverse returned a video without a status: {code!r}")
    width = _positive_int(resp.get("outputWidth"))
    height = _positive_int(resp.get("outputHeight"))
    if code in SUCCEEDED_STATUSES or (code == _MAYBE_DONE and width and height):
        asset = _asset(resp, width, height)
        if asset is None:
            return JobStatus(
                state=JobState.FAILED,
                error=ErrorInfo(
                    code="provider_output_invalid",
                    message="the provider reported success without a usable output",
                ),
                retry_after_s=retry_after_s,
            )
        return JobStatus(
            state=JobState.SUCCEEDED, progress=1.0, asset=asset, retry_after_s=retry_after_s
        )
    if code in RUNNING_STATUSES or code == _MAYBE_DONE:
        return JobStatus(state=JobState.RUNNING, retry_after_s=retry_after_s)
    if code in FILTERED_STATUSES:
        error = ErrorInfo(
            code=ContentRejected.code,
            message=f"pixverse moderation filtered the video (status {code})",
        )
    elif code in FAILED_STATUSES:
        error = ErrorInfo(
            code="generation_failed", message=f"pixverse failed the video (status {code})"
        )
    else:
        raise ProviderUnavailable(f"pixverse returned an unknown video status {code}")
    return JobStatus(state=JobState.FAILED, error=error, retry_after_s=retry_after_s)


def _asset(resp: Mapping[str, Any], width: int | None, height: int | None) -> Asset | None:
    url = resp.get("url")
    if not isinstance(url, str) or not url:
        return None
    duration = resp.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration <= 0:
        duration = None
    try:
        return Asset.model_validate(
            {
                "url": url,
                "media_type": MEDIA_TYPE,
                "width": width,
                "height": height,
                "duration_s": duration,
            }
        )
    except ValidationError:
        return None


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value
