"""Pixverse's answers -> our taxonomy: its envelope, error codes, video statuses and asset.

Every Pixverse response is an envelope `{"ErrCode": int, "ErrMsg": str, "Resp": {...}}`;
an `ErrCode` other than 0 is an error whatever the HTTP status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from genbus.contracts import Asset, ErrorInfo
from genbus.providers._http import non_negative_number, parse_retry_after
from genbus.providers.credentials import Credentials
from genbus.providers.errors import (
    AuthFailed,
    ConcurrencyLimited,
    ContentRejected,
    InvalidRequest,
    OutputRejected,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from genbus.providers.protocol import JobState, JobStatus

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


def answer_of(
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


def job_status_of(resp: Mapping[str, Any], *, retry_after_s: float | None) -> JobStatus:
    status = _job_status_of(resp, retry_after_s=retry_after_s)
    cost = credits_of(resp)
    return (
        dataclasses.replace(status, cost=cost) if cost is not None and status.terminal else status
    )


def credits_of(resp: Mapping[str, Any]) -> float | None:
    """The credits a Pixverse answer says a job used: `credit` (the generate answers) or
    `credits` (other answers); None when it says nothing."""
    return non_negative_number(resp.get("credit", resp.get("credits")))


def _job_status_of(resp: Mapping[str, Any], *, retry_after_s: float | None) -> JobStatus:
    code = resp.get("status")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ProviderUnavailable(f"pixverse returned a video without a status: {code!r}")
    width = positive_int(resp.get("outputWidth"))
    height = positive_int(resp.get("outputHeight"))
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


def positive_int(value: object) -> int | None:
    """`value` when it is a positive integer (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value
