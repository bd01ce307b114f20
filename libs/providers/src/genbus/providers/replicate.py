"""The adapter for Replicate's predictions API (https://replicate.com/docs/reference/http).

Auth is `Authorization: Bearer <token>`. Predictions are created asynchronously (no
`Prefer: wait`) and followed with `GET /v1/predictions/{id}`.

Idempotency: Replicate documents no idempotency header for creating predictions (only `Prefer`
and `Cancel-After`) and no lookup by our reference, so none is sent and `replayed` is always
False. A create that may have reached Replicate without an answer we could read (a timeout or
lost connection after sending, a 502/504, an accepted answer without a prediction id) is
reported as `SubmitOutcomeUnknown`, and the dispatcher never resubmits it blindly: with nothing
to look up or replay safely, it ends the generation (`submission_outcome_unknown`) rather than
risk a second billed prediction. A crash between "Replicate accepted" and "we recorded it" can
still cost a second prediction.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import ValidationError

from genbus.contracts import Asset, ErrorInfo, InputRef
from genbus.providers._http import HttpAdapter, non_negative_number, parse_retry_after
from genbus.providers.credentials import Credentials
from genbus.providers.errors import (
    AuthFailed,
    InvalidRequest,
    JobNotFound,
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

REPLICATE_DEFAULT_BASE_URL = "https://api.replicate.com"
REPLICATE_OPERATIONS = frozenset(
    {"text_to_video", "image_to_video", "text_to_image", "image_to_image"}
)


@dataclass(frozen=True, slots=True)
class ReplicateModel:
    """A Replicate model: `owner/name`, `owner/name:version` or a bare version id.

    `image_input` names the model's input field that takes the input image's URL.
    """

    ref: str
    image_input: str = "image"


#: operation → the model used when `params.model` is not set (override per adapter).
DEFAULT_MODELS: Mapping[str, ReplicateModel] = {
    "text_to_video": ReplicateModel("wan-video/wan-2.2-t2v-fast"),
    "image_to_video": ReplicateModel("wan-video/wan-2.2-i2v-fast", image_input="image"),
    "text_to_image": ReplicateModel("black-forest-labs/flux-schnell"),
    "image_to_image": ReplicateModel("black-forest-labs/flux-kontext-pro", "input_image"),
}

#: canonical param → Replicate `input` field. Model inputs differ; these names are the common
#: ones and models ignore inputs they do not declare. `quality` has no common field: pass the
#: model's own (e.g. `resolution`) in `provider_options`, which go into `input` as they are.
INPUT_FIELDS: Mapping[str, str] = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "seed": "seed",
    "aspect_ratio": "aspect_ratio",
    "duration": "duration",
}

_STATES: Mapping[str, JobState] = {
    "starting": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELLED,
    "aborted": JobState.FAILED,  # deadline passed before it started
}

# HTTP status → error; 404 depends on the call, 408 and 5xx are ProviderUnavailable.
_ERRORS: Mapping[int, type[ProviderError]] = {
    400: InvalidRequest,
    401: AuthFailed,
    402: QuotaExhausted,
    403: AuthFailed,
    422: InvalidRequest,
    429: RateLimited,
}

_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
_MODEL_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_IMAGE_ROLES = ("image", "first_frame")


class ReplicateAdapter(HttpAdapter):
    """Client of Replicate's predictions API: create, get, cancel."""

    provider_id: ClassVar[str] = "replicate"
    operations: ClassVar[frozenset[str]] = REPLICATE_OPERATIONS
    submit_guarantees: ClassVar[SubmitGuarantees] = SubmitGuarantees(
        idempotent=False, findable_by_reference=False
    )

    def __init__(
        self,
        *,
        base_url: str | None = REPLICATE_DEFAULT_BASE_URL,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
        default_models: Mapping[str, ReplicateModel] | None = None,
    ) -> None:
        super().__init__(base_url=base_url, timeout=timeout, transport=transport, limits=limits)
        self._models = {**DEFAULT_MODELS, **(default_models or {})}

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """Create a prediction of `params.model` (or the operation's default model)."""
        if not self.supports(request.operation_type):
            raise UnsupportedOperation(
                f"replicate does not support operation {request.operation_type!r}"
            )
        model = self._model_for(request.operation_type, request.params.get("model"))
        path, body = _create_call(model.ref)
        body["input"] = to_replicate_input(request.params, request.inputs, model)
        response = await self._send(
            "POST",
            f"{self._base_url(request.base_url)}{path}",
            credentials=request.credentials,
            headers=_auth_headers(request.credentials),
            json=body,
            creates_job=True,
        )
        if not response.is_success:
            # On create, 404 means the model (or version) does not exist.
            raise _error_from(response, request.credentials, not_found=InvalidRequest)
        # Accepted: a prediction exists even if this answer cannot be read.
        data = _json_object(response, unreadable=SubmitOutcomeUnknown)
        prediction_id = data.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise SubmitOutcomeUnknown("replicate accepted a prediction without an id")
        raw_status = data.get("status")
        state = _STATES.get(raw_status) if isinstance(raw_status, str) else None
        return SubmitResult(provider_job_id=prediction_id, status=(state or JobState.QUEUED).value)

    async def status(self, job: ProviderJobRef) -> JobStatus:
        """GET /v1/predictions/{id}, translated to a `JobStatus`."""
        response = await self._send(
            "GET",
            f"{self._base_url(job.base_url)}/v1/predictions/{quote(job.provider_job_id, safe='')}",
            credentials=job.credentials,
            headers=_auth_headers(job.credentials),
        )
        if response.status_code != 200:
            raise _error_from(response, job.credentials, not_found=JobNotFound)
        return _job_status(
            _json_object(response),
            credentials=job.credentials,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
        )

    async def cancel(self, job: ProviderJobRef) -> None:
        """POST /v1/predictions/{id}/cancel; a finished prediction stays as it was."""
        prediction_id = quote(job.provider_job_id, safe="")
        response = await self._send(
            "POST",
            f"{self._base_url(job.base_url)}/v1/predictions/{prediction_id}/cancel",
            credentials=job.credentials,
            headers=_auth_headers(job.credentials),
        )
        if not response.is_success:
            raise _error_from(response, job.credentials, not_found=JobNotFound)

    def _model_for(self, operation_type: str, requested: object) -> ReplicateModel:
        if requested is None:
            return self._models[operation_type]
        if not isinstance(requested, str) or not requested.strip():
            raise InvalidRequest("replicate model must be a non-empty string")
        ref = requested.strip()
        # A model we know keeps its image input field, whatever version is pinned.
        name = ref.partition(":")[0]
        for known in self._models.values():
            if known.ref.partition(":")[0] == name:
                return ReplicateModel(ref, known.image_input)
        return ReplicateModel(ref)

    async def balance(self, credentials: Credentials, base_url: str | None = None) -> int | None:
        """Replicate bills by the second and has no balance API: None."""
        return None


def to_replicate_input(
    params: Mapping[str, Any], inputs: Sequence[InputRef], model: ReplicateModel
) -> dict[str, Any]:
    """The prediction `input` for canonical `params`: the one place they are translated.

    `provider_options` go in as they are (the model's own inputs); canonical params win.
    """
    options = params.get("provider_options") or {}
    if not isinstance(options, Mapping):
        raise InvalidRequest("provider_options must be an object")
    body: dict[str, Any] = {key: value for key, value in options.items() if value is not None}
    for param, field in INPUT_FIELDS.items():
        value = params.get(param)
        if value is not None:
            body[field] = value
    images = [item for item in inputs if item.role in _IMAGE_ROLES] or list(inputs[:1])
    if images:
        if images[0].url is None:
            # An input naming an earlier generation must be resolved to its asset URL first.
            raise InvalidRequest(f"input {images[0].role!r} has no url")
        body[model.image_input] = str(images[0].url)
    return body


def _create_call(ref: str) -> tuple[str, dict[str, Any]]:
    """Path and body (without `input`) creating a prediction of the model `ref`."""
    name, _, version = ref.partition(":")
    if _VERSION_ID.match(name) and not version:
        return "/v1/predictions", {"version": name}
    owner, _, model = name.partition("/")
    if not (_MODEL_PART.match(owner) and _MODEL_PART.match(model)):
        raise InvalidRequest(f"replicate model must be owner/name[:version], not {ref!r}")
    if version:
        if not _VERSION_ID.match(version):
            raise InvalidRequest(f"replicate version must be 64 hex digits, not {version!r}")
        return "/v1/predictions", {"version": version}
    return f"/v1/models/{owner}/{model}/predictions", {}


def _auth_headers(credentials: Credentials) -> dict[str, str]:
    token = credentials.get("api_key")
    if not token:
        raise AuthFailed("replicate credentials have no api_key")
    return {"Authorization": f"Bearer {token}"}


def _error_from(
    response: httpx.Response, credentials: Credentials, *, not_found: type[ProviderError]
) -> ProviderError:
    status = response.status_code
    error_class = _ERRORS.get(status)
    if error_class is None:
        if status == 404:
            error_class = not_found
        elif 400 <= status < 500 and status != 408:
            error_class = InvalidRequest
        else:
            error_class = ProviderUnavailable
    message = _problem_detail(response)
    detail = credentials.redact(message) if message else response.reason_phrase
    return error_class(
        f"replicate HTTP {status}: {detail}",
        retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
    )


def _problem_detail(response: httpx.Response) -> str:
    # Replicate answers errors as problem details: {"title", "detail", "status"}.
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [data.get("title"), data.get("detail")]
    return ": ".join(part for part in parts if isinstance(part, str) and part)


def _json_object(
    response: httpx.Response, *, unreadable: type[ProviderError] = ProviderUnavailable
) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise unreadable(f"replicate HTTP {response.status_code}: body is not JSON") from exc
    if not isinstance(data, dict):
        raise unreadable(f"replicate HTTP {response.status_code}: body is not a JSON object")
    return data


def _job_status(
    data: Mapping[str, Any], *, credentials: Credentials, retry_after_s: float | None
) -> JobStatus:
    raw_status = data.get("status")
    state = _STATES.get(raw_status) if isinstance(raw_status, str) else None
    if state is None:
        raise ProviderUnavailable(f"replicate returned an unknown prediction status {raw_status!r}")
    asset: Asset | None = None
    error: ErrorInfo | None = None
    if state is JobState.SUCCEEDED:
        asset = _asset(data.get("output"))
        if asset is None:
            state = JobState.FAILED
            error = ErrorInfo(
                code="provider_output_invalid",
                message="the provider reported success without a usable output",
            )
    elif raw_status == "aborted":
        error = ErrorInfo(
            code="aborted", message="replicate aborted the prediction before it started"
        )
    elif state is JobState.FAILED:
        message = data.get("error")
        error = ErrorInfo(
            code="generation_failed",
            message=credentials.redact(message)[:2000] if isinstance(message, str) else "",
        )
    return JobStatus(
        state=state,
        progress=1.0 if state is JobState.SUCCEEDED else None,
        asset=asset,
        error=error,
        retry_after_s=retry_after_s,
        cost=_predict_time(data) if state.terminal else None,
    )


def _predict_time(data: Mapping[str, Any]) -> float | None:
    """`metrics.predict_time`: the seconds of compute Replicate bills the prediction for."""
    metrics = data.get("metrics")
    return non_negative_number(metrics.get("predict_time")) if isinstance(metrics, dict) else None


def _asset(output: object) -> Asset | None:
    # A model's output is a file URL, or a list of them (the first is the result).
    if isinstance(output, list) and output:
        output = output[0]
    if not isinstance(output, str) or not output:
        return None
    media_type, _ = mimetypes.guess_type(urlsplit(output).path)
    try:
        return Asset.model_validate(
            {"url": output, "media_type": media_type or "application/octet-stream"}
        )
    except ValidationError:
        return None
