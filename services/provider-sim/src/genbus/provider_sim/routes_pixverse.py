"""Pixverse's platform API (OpenAPI v2) as a facade over the same jobs, keys and counters.

Every answer is Pixverse's envelope `{"ErrCode", "ErrMsg", "Resp"}`; refusals are HTTP 200 with
a non-zero `ErrCode` (as Pixverse documents them), except rate limiting (HTTP 429) and simulated
crashes (HTTP 500). Pixverse has no idempotency: the same `Ai-trace-id` sent twice to a generate
route makes two jobs, and the trace id is the job's client reference, so the second one counts
in `duplicate_references`. The generate routes and the image upload are submit routes
(`submit_latency_ms`, `submits_in_progress`); a generate's answer may come late or be lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute

from genbus.provider_sim.auth import authenticate
from genbus.provider_sim.deps import StateDep, hang_status_if_told
from genbus.provider_sim.errors import ErrorCode, SimError
from genbus.provider_sim.forms import parse_form
from genbus.provider_sim.jobs import OUTPUT_HEIGHT, OUTPUT_WIDTH, Job, JobStatus, credits_left
from genbus.provider_sim.state import SimState
from genbus.provider_sim.submits import answer_submission, post_submit, submit_handler

#: SimError → (HTTP status, Pixverse ErrCode); None: a bare HTTP error, no envelope.
PIXVERSE_ERRORS: Mapping[ErrorCode, tuple[int, int | None]] = {
    ErrorCode.UNAUTHORIZED: (200, 10002),
    ErrorCode.NOT_FOUND: (200, 500008),
    ErrorCode.INVALID_REQUEST: (200, 400017),
    ErrorCode.IDEMPOTENCY_CONFLICT: (200, 400017),  # unused: this facade has no idempotency
    ErrorCode.RATE_LIMITED: (429, None),
    ErrorCode.CONCURRENCY_LIMIT: (200, 500044),
    ErrorCode.QUOTA_EXHAUSTED: (200, 500090),
    ErrorCode.CONTENT_REJECTED: (200, 500063),
    ErrorCode.INTERNAL_ERROR: (500, None),
    ErrorCode.UNAVAILABLE: (200, 500069),
    ErrorCode.METHOD_NOT_ALLOWED: (405, None),
}

#: Our job status → Pixverse `Resp.status` (1 done, 5 generating, 8 failed).
PIXVERSE_STATUS: Mapping[JobStatus, int] = {
    JobStatus.QUEUED: 5,
    JobStatus.RUNNING: 5,
    JobStatus.SUCCEEDED: 1,
    JobStatus.FAILED: 8,
    JobStatus.CANCELLED: 8,  # Pixverse cannot cancel; only a native cancel gets here
}

QUALITIES = frozenset({"360p", "540p", "720p", "1080p"})
DURATIONS = frozenset({5, 8})
MOTION_MODES = frozenset({"normal", "fast"})
MAX_TEXT = 2048
MAX_SEED = 2**31 - 1


def pixverse_error_response(error: SimError) -> Response:
    """`error` as Pixverse would answer it."""
    status_code, err_code = PIXVERSE_ERRORS[error.code]
    headers = None
    if error.retry_after_s is not None:
        headers = {"Retry-After": str(error.retry_after_s)}
    if err_code is None:
        return PlainTextResponse(error.message, status_code=status_code, headers=headers)
    return JSONResponse(
        {"ErrCode": err_code, "ErrMsg": error.message, "Resp": None},
        status_code=status_code,
        headers=headers,
    )


class _PixverseRoute(APIRoute):
    """A route whose `SimError`s (dependencies included) are answered in Pixverse's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SimError as exc:
                return pixverse_error_response(exc)

        return handle


class _PixverseSubmitRoute(_PixverseRoute):
    """A Pixverse route that creates jobs or uploads inputs (see `submit_handler`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return submit_handler(super().get_route_handler())


async def _pixverse_key(request: Request, state: StateDep) -> str:
    latency_ms = state.config.latency_ms
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)
    # Pixverse authenticates by `API-KEY` only.
    return authenticate({"api-key": request.headers.get("api-key", "")}, state.config.keys)


PixverseKeyDep = Annotated[str, Depends(_pixverse_key)]

router = APIRouter(prefix="/openapi/v2", tags=["pixverse"], route_class=_PixverseRoute)


@post_submit(
    router,
    "/video/text/generate",
    operation_id="pixverse_text_to_video",
    route_class=_PixverseSubmitRoute,
)
async def text_to_video(request: Request, state: StateDep, api_key: PixverseKeyDep) -> Response:
    return await _generate("text_to_video", request, state, api_key)


@post_submit(
    router,
    "/video/img/generate",
    operation_id="pixverse_image_to_video",
    route_class=_PixverseSubmitRoute,
)
async def image_to_video(request: Request, state: StateDep, api_key: PixverseKeyDep) -> Response:
    return await _generate("image_to_video", request, state, api_key)


@post_submit(
    router, "/image/upload", operation_id="pixverse_upload_image", route_class=_PixverseSubmitRoute
)
async def upload_image(request: Request, state: StateDep, api_key: PixverseKeyDep) -> Response:
    _trace_id(request)
    try:
        form = parse_form(request.headers.get("content-type", ""), await request.body())
    except ValueError as exc:
        raise SimError(ErrorCode.INVALID_REQUEST, f"unreadable form: {exc}") from exc
    image_url = form.get("image_url")
    image = form.get("image")
    if isinstance(image_url, str) and image_url:
        if urlsplit(image_url).scheme not in ("http", "https"):
            raise _invalid("image_url must be an http(s) URL")
        img_id = state.upload_image(api_key, image_url)
    elif isinstance(image, bytes) and image:
        image_url = ""
        img_id = state.upload_image(api_key, f"file of {len(image)} bytes")
    else:
        raise _invalid("either image or image_url is required")
    return _ok({"img_id": img_id, "img_url": image_url})


#: The balance an unlimited key shows (Pixverse has no "unlimited").
UNLIMITED_BALANCE = 1_000_000_000


@router.get("/account/balance", operation_id="pixverse_account_balance")
async def account_balance(request: Request, state: StateDep, api_key: PixverseKeyDep) -> Response:
    """The key's credits left, as Pixverse's monthly credits (no purchased ones)."""
    _trace_id(request)
    left = credits_left(state.stats(), state.config.credits_for(api_key), api_key)
    monthly = UNLIMITED_BALANCE if left is None else left
    return _ok({"account_id": 0, "credit_monthly": monthly, "credit_package": 0})


@router.get("/video/result/{video_id}", operation_id="pixverse_video_result")
async def video_result(
    video_id: str, request: Request, state: StateDep, api_key: PixverseKeyDep
) -> Response:
    _trace_id(request)
    if not video_id.isascii() or not video_id.isdigit():
        raise SimError(ErrorCode.NOT_FOUND, "no such video")
    await hang_status_if_told(state, api_key)
    job = state.get_job(api_key, video_id)
    return _ok(render_video(job, state.now(), f"{request.base_url}v1/files/"))


def render_video(job: Job, now: float, files_url: str) -> dict[str, Any]:
    """The `Resp` of `GET /openapi/v2/video/result/{id}`."""
    status = job.status(now)
    done = status is JobStatus.SUCCEEDED
    duration = job.output_duration_s
    return {
        "id": int(job.id),
        "status": PIXVERSE_STATUS[status],
        "url": f"{files_url}{job.id}" if done else "",
        "outputWidth": OUTPUT_WIDTH if done else 0,
        "outputHeight": OUTPUT_HEIGHT if done else 0,
        "duration": int(duration) if duration.is_integer() else duration,
    }


async def _generate(operation: str, request: Request, state: SimState, api_key: str) -> Response:
    try:
        trace_id = _trace_id(request)
        try:
            body: object = json.loads(await request.body())
        except ValueError as exc:
            raise SimError(ErrorCode.INVALID_REQUEST, "the body is not valid JSON") from exc
        job_body = _job_body(operation, body, trace_id, state, api_key)
    except SimError as exc:
        state.count_rejection(api_key, exc)
        raise
    # No idempotency key: Pixverse has none, so a replayed request is a second job.
    submission = state.submit(api_key, job_body, None, numeric_id=True)
    created = {"video_id": int(submission.job.id), "credit": submission.job.credits}
    return await answer_submission(submission, _ok(created))


def _job_body(
    operation: str, body: object, trace_id: str, state: SimState, api_key: str
) -> dict[str, Any]:
    """Check a Pixverse generate body; the equivalent native job body."""
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    prompt = body.get("prompt", "" if operation == "image_to_video" else None)
    if not isinstance(prompt, str) or (operation == "text_to_video" and not prompt.strip()):
        raise _invalid("prompt is required")
    for field in ("prompt", "negative_prompt"):
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
            raise _invalid(f"{field} must be a string of at most {MAX_TEXT} characters")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model is required")
    quality = body.get("quality")
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise _invalid(f"quality must be one of {sorted(QUALITIES)}")
    duration = body.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, int) or duration not in DURATIONS:
        raise _invalid(f"duration must be one of {sorted(DURATIONS)}")
    motion_mode = body.get("motion_mode", "normal")
    if not isinstance(motion_mode, str) or motion_mode not in MOTION_MODES:
        raise _invalid(f"motion_mode must be one of {sorted(MOTION_MODES)}")
    seed = body.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise _invalid(f"seed must be an integer in [0, {MAX_SEED}]")
    if operation == "text_to_video":
        aspect_ratio = body.get("aspect_ratio")
        if not isinstance(aspect_ratio, str) or not aspect_ratio:
            raise _invalid("aspect_ratio is required")
    else:
        img_id = body.get("img_id")
        if isinstance(img_id, bool) or not isinstance(img_id, int):
            raise _invalid("img_id is required")
        if not state.has_image(api_key, img_id):
            raise _invalid(f"img_id {img_id} was not uploaded with this key")
    return {
        "operation": operation,
        "prompt": prompt,
        "duration": duration,
        "client_reference": trace_id,
    }


def _trace_id(request: Request) -> str:
    value = request.headers.get("ai-trace-id", "").strip()
    try:
        UUID(value)
    except ValueError:
        raise _invalid("the Ai-trace-id header must be a UUID") from None
    return value


def _invalid(message: str) -> SimError:
    return SimError(ErrorCode.INVALID_REQUEST, message)


def _ok(resp: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"ErrCode": 0, "ErrMsg": "success", "Resp": resp})
