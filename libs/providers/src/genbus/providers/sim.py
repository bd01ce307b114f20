"""The adapter for the sim provider (its protocol: docs/provider-sim.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import ValidationError

from genbus.contracts import PROVIDER_FAILED, Asset, ErrorInfo
from genbus.providers._http import HttpAdapter, non_negative_number, parse_retry_after
from genbus.providers.credentials import Credentials
from genbus.providers.errors import (
    AuthFailed,
    ConcurrencyLimited,
    ContentRejected,
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

SIM_DEFAULT_BASE_URL = "http://127.0.0.1:9100"

SIM_OPERATIONS = frozenset(
    {"text_to_video", "image_to_video", "video_extend", "text_to_image", "image_to_image"}
)

# (HTTP status, error.code) → error; a row with a code wins over the (status, None) row.
# 404 depends on the call (see `_error_from`); 408 and 5xx are ProviderUnavailable.
_ERRORS: Mapping[tuple[int, str | None], type[ProviderError]] = {
    (400, None): InvalidRequest,
    (401, None): AuthFailed,
    (402, None): QuotaExhausted,
    (403, None): AuthFailed,
    (409, None): InvalidRequest,  # idempotency_conflict: the same key with another body
    (422, None): InvalidRequest,
    (422, "content_rejected"): ContentRejected,
    (429, None): RateLimited,
    (429, "concurrency_limit"): ConcurrencyLimited,
}

_STATES: Mapping[str, JobState] = {state.value: state for state in JobState}

# Keys the adapter sets itself; params cannot override them.
_RESERVED = frozenset({"operation", "client_reference", "inputs"})

_MAX_CODE = 64


class SimAdapter(HttpAdapter):
    """Client of the sim provider: Bearer auth, idempotent submit, find by reference, status
    and cancel."""

    provider_id: ClassVar[str] = "sim"
    operations: ClassVar[frozenset[str]] = SIM_OPERATIONS
    submit_guarantees: ClassVar[SubmitGuarantees] = SubmitGuarantees(
        idempotent=True, findable_by_reference=True
    )

    def __init__(
        self,
        *,
        base_url: str | None = SIM_DEFAULT_BASE_URL,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        super().__init__(base_url=base_url, timeout=timeout, transport=transport, limits=limits)

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """POST /v1/jobs with the request's `Idempotency-Key`; 201 is new, 200 is a replay.

        An unanswered POST is `SubmitOutcomeUnknown`: replaying it with the same key is safe.
        """
        if not self.supports(request.operation_type):
            raise UnsupportedOperation(f"sim does not support operation {request.operation_type!r}")
        url = f"{self._base_url(request.base_url)}/v1/jobs"
        headers = {
            **_auth_headers(request.credentials),
            "Idempotency-Key": request.idempotency_key,
        }
        response = await self._send(
            "POST",
            url,
            credentials=request.credentials,
            headers=headers,
            json=_job_body(request),
            creates_job=True,
        )
        if response.status_code not in (200, 201, 202):
            raise _error_from(response, request.credentials, not_found=ProviderUnavailable)
        # Accepted: a job exists even if this answer cannot be read.
        data = _json_object(response, unreadable=SubmitOutcomeUnknown)
        return _submit_result(
            data, replayed=response.status_code == 200, unreadable=SubmitOutcomeUnknown
        )

    async def find_by_reference(self, request: SubmitRequest) -> SubmitResult | None:
        """GET /v1/jobs?client_reference=<generation id>: its newest job, or None if none."""
        query = urlencode({"client_reference": str(request.generation_id)})
        response = await self._send(
            "GET",
            f"{self._base_url(request.base_url)}/v1/jobs?{query}",
            credentials=request.credentials,
            headers=_auth_headers(request.credentials),
        )
        if response.status_code != 200:
            # 404: a sim without the lookup route; "not found" must never read as "no job".
            raise _error_from(response, request.credentials, not_found=ProviderUnavailable)
        jobs = _json_object(response).get("data")
        if not isinstance(jobs, list):
            raise ProviderUnavailable("sim listed jobs without a `data` list")
        if not jobs:
            return None
        newest = jobs[0]
        if not isinstance(newest, dict):
            raise ProviderUnavailable("sim listed a job that is not a JSON object")
        return _submit_result(newest, replayed=True)

    async def status(self, job: ProviderJobRef) -> JobStatus:
        """GET /v1/jobs/{id}, translated to a `JobStatus`."""
        base_url = self._base_url(job.base_url)
        response = await self._send(
            "GET",
            f"{base_url}/v1/jobs/{quote(job.provider_job_id, safe='')}",
            credentials=job.credentials,
            headers=_auth_headers(job.credentials),
        )
        if response.status_code != 200:
            raise _error_from(response, job.credentials, not_found=JobNotFound)
        return _job_status(
            _json_object(response),
            base_url=base_url,
            credentials=job.credentials,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
        )

    async def cancel(self, job: ProviderJobRef) -> None:
        """POST /v1/jobs/{id}/cancel (202); the job ends cancelled unless already terminal."""
        response = await self._send(
            "POST",
            f"{self._base_url(job.base_url)}/v1/jobs/{quote(job.provider_job_id, safe='')}/cancel",
            credentials=job.credentials,
            headers=_auth_headers(job.credentials),
        )
        if not response.is_success:
            raise _error_from(response, job.credentials, not_found=JobNotFound)

    async def balance(self, credentials: Credentials, base_url: str | None = None) -> int | None:
        """GET /v1/balance: the key's credits left (None: unlimited)."""
        response = await self._send(
            "GET",
            f"{self._base_url(base_url)}/v1/balance",
            credentials=credentials,
            headers=_auth_headers(credentials),
        )
        if response.status_code != 200:
            raise _error_from(response, credentials, not_found=ProviderUnavailable)
        return _balance_of(_json_object(response))


def _balance_of(data: Mapping[str, Any]) -> int | None:
    left = data.get("credits_left")
    return left if isinstance(left, int) and not isinstance(left, bool) and left >= 0 else None


def _auth_headers(credentials: Credentials) -> dict[str, str]:
    api_key = credentials.get("api_key")
    if not api_key:
        raise AuthFailed("sim credentials have no api_key")
    return {"Authorization": f"Bearer {api_key}"}


def _job_body(request: SubmitRequest) -> dict[str, Any]:
    params = dict(request.params)
    options = params.pop("provider_options", None) or {}
    if not isinstance(options, Mapping):
        raise InvalidRequest("provider_options must be an object")
    # Canonical params win over provider options; None means "not set".
    merged = {**options, **params}
    body: dict[str, Any] = {
        key: value for key, value in merged.items() if value is not None and key not in _RESERVED
    }
    body["operation"] = request.operation_type
    body["prompt"] = merged.get("prompt") or ""
    body["client_reference"] = str(request.generation_id)
    if request.inputs:
        body["inputs"] = [_input(item.role, item.url) for item in request.inputs]
    return body


def _submit_result(
    data: Mapping[str, Any],
    *,
    replayed: bool,
    unreadable: type[ProviderError] = ProviderUnavailable,
) -> SubmitResult:
    job_id = data.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise unreadable("sim answered with a job without an id")
    return SubmitResult(
        provider_job_id=job_id, status=str(data.get("status") or ""), replayed=replayed
    )


def _input(role: str, url: object) -> dict[str, str]:
    if url is None:
        # An input naming an earlier generation must be resolved to its asset URL first.
        raise InvalidRequest(f"input {role!r} has no url")
    return {"role": role, "url": str(url)}


def _error_from(
    response: httpx.Response, credentials: Credentials, *, not_found: type[ProviderError]
) -> ProviderError:
    status = response.status_code
    code, message = _error_body(response)
    retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
    error_class = _ERRORS.get((status, code)) or _ERRORS.get((status, None))
    if error_class is None:
        if status == 404:
            error_class = not_found
        elif 400 <= status < 500 and status != 408:
            error_class = InvalidRequest
        else:
            error_class = ProviderUnavailable
    detail = credentials.redact(message) if message else response.reason_phrase
    return error_class(f"sim HTTP {status} {code or ''}: {detail}", retry_after_s=retry_after_s)


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        data = response.json()
    except ValueError:
        return None, ""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    message = error.get("message")
    return (
        code if isinstance(code, str) and code else None,
        message if isinstance(message, str) else "",
    )


def _json_object(
    response: httpx.Response, *, unreadable: type[ProviderError] = ProviderUnavailable
) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise unreadable(f"sim HTTP {response.status_code}: body is not JSON") from exc
    if not isinstance(data, dict):
        raise unreadable(f"sim HTTP {response.status_code}: body is not a JSON object")
    return data


def _job_status(
    data: Mapping[str, Any], *, base_url: str, credentials: Credentials, retry_after_s: float | None
) -> JobStatus:
    raw_state = data.get("status")
    state = _STATES.get(raw_state) if isinstance(raw_state, str) else None
    if state is None:
        raise ProviderUnavailable(f"sim returned an unknown job status {raw_state!r}")
    asset: Asset | None = None
    error: ErrorInfo | None = None
    if state is JobState.SUCCEEDED:
        asset = _asset(data.get("output"), base_url)
        if asset is None:
            state = JobState.FAILED
            error = ErrorInfo(
                code="provider_output_invalid",
                message="the provider reported success without a usable output",
            )
    elif state is JobState.FAILED:
        error = _error_info(data.get("error"), credentials)
    return JobStatus(
        state=state,
        progress=_progress(data.get("progress")),
        asset=asset,
        error=error,
        retry_after_s=retry_after_s,
        cost=non_negative_number(data.get("credits")),
    )


def _asset(output: object, base_url: str) -> Asset | None:
    if not isinstance(output, dict) or not isinstance(output.get("url"), str):
        return None
    # A relative URL is resolved against the account's base URL.
    url = str(httpx.URL(f"{base_url}/").join(output["url"]))
    try:
        return Asset.model_validate(
            {
                "url": url,
                "media_type": output.get("media_type") or "application/octet-stream",
                "width": output.get("width"),
                "height": output.get("height"),
                "duration_s": output.get("duration_s"),
            }
        )
    except ValidationError:
        return None


def _error_info(error: object, credentials: Credentials) -> ErrorInfo:
    code = PROVIDER_FAILED.code
    message = ""
    if isinstance(error, dict):
        if isinstance(error.get("code"), str) and error["code"]:
            code = error["code"][:_MAX_CODE]
        if isinstance(error.get("message"), str):
            message = credentials.redact(error["message"])[:2000]
    return ErrorInfo(code=code, message=message)


def _progress(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return min(1.0, max(0.0, float(value)))
