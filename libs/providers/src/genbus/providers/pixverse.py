"""The adapter for Pixverse's platform API (https://docs.platform.pixverse.ai, OpenAPI v2).

Requests are built in `pixverse_body`, answers read in `pixverse_answers`. Requests carry
`API-KEY` and an `Ai-trace-id` (a UUID, required by Pixverse).

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
from typing import ClassVar, Final
from uuid import UUID, uuid4, uuid5

import httpx

from genbus.contracts import InputRef
from genbus.providers._http import HttpAdapter, parse_retry_after
from genbus.providers.credentials import Credentials
from genbus.providers.errors import (
    AuthFailed,
    InvalidRequest,
    JobNotFound,
    OutputRejected,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
    UnsupportedOperation,
)
from genbus.providers.pixverse_answers import (
    answer_of,
    credits_of,
    job_status_of,
    positive_int,
)
from genbus.providers.pixverse_body import to_pixverse_body
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
BALANCE_PATH = "/openapi/v2/account/balance"

_GENERATE_PATHS: Mapping[str, str] = {
    "text_to_video": TEXT_TO_VIDEO_PATH,
    "image_to_video": IMAGE_TO_VIDEO_PATH,
}

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
        resp = answer_of(
            response, credentials, not_found=ProviderUnavailable, unreadable=SubmitOutcomeUnknown
        )
        video_id = positive_int(resp.get("video_id"))
        if video_id is None:
            raise SubmitOutcomeUnknown("pixverse accepted a video without a video_id")
        return SubmitResult(
            provider_job_id=str(video_id), status=JobState.QUEUED.value, cost=credits_of(resp)
        )

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
            resp = answer_of(response, job.credentials, not_found=JobNotFound)
        except OutputRejected as exc:
            # On the result endpoint this is the job's outcome: it ended without a usable
            # output, and a new attempt may well pass moderation.
            return JobStatus(
                state=JobState.FAILED,
                error=exc.to_error_info(),
                retry_after_s=retry_after_s,
            )
        return job_status_of(resp, retry_after_s=retry_after_s)

    async def balance(self, credentials: Credentials, base_url: str | None = None) -> int | None:
        """GET /openapi/v2/account/balance: monthly plus purchased credits left."""
        response = await self._send(
            "GET",
            f"{self._base_url(base_url)}{BALANCE_PATH}",
            credentials=credentials,
            headers=_headers(credentials),
        )
        resp = answer_of(response, credentials, not_found=ProviderUnavailable)
        parts = [positive_int(resp.get(k)) or 0 for k in ("credit_monthly", "credit_package")]
        return sum(parts)

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
        resp = answer_of(response, credentials, not_found=ProviderUnavailable)
        img_id = positive_int(resp.get("img_id"))
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


__all__ = [
    "PIXVERSE_DEFAULT_BASE_URL",
    "PIXVERSE_OPERATIONS",
    "PixverseAdapter",
    "pixverse_trace_id",
    "to_pixverse_body",
]
