"""SimAdapter against httpx.MockTransport: request shape and response/error translation."""

from __future__ import annotations

import json
import logging
from typing import Any
from uuid import uuid4

import httpx
import pytest

from genbus.contracts import Asset, ErrorInfo, InputRef
from genbus.providers import (
    AuthFailed,
    Behaviour,
    ConcurrencyLimited,
    ContentRejected,
    Credentials,
    InvalidRequest,
    JobNotFound,
    JobState,
    JobStatus,
    ProviderError,
    ProviderJobRef,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    SimAdapter,
    SubmitGuarantees,
    SubmitOutcomeUnknown,
    SubmitRequest,
    SubmitResult,
    UnsupportedOperation,
)

from .conftest import MOCK_BASE_URL, AdapterMaker


def submit_request(credentials: Credentials, **overrides: Any) -> SubmitRequest:
    fields: dict[str, Any] = {
        "generation_id": uuid4(),
        "operation_type": "text_to_video",
        "params": {"prompt": "a cat"},
        "idempotency_key": f"genbus-{uuid4()}-1",
        "credentials": credentials,
    }
    return SubmitRequest(**{**fields, **overrides})


def job_ref(credentials: Credentials, job_id: str = "job-1") -> ProviderJobRef:
    return ProviderJobRef(provider_job_id=job_id, credentials=credentials)


def error_response(
    status: int, code: str | None, message: str = "", headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"error": {"code": code, "message": message}} if code else None
    return httpx.Response(status, json=body, headers=headers)


# -- submit ----------------------------------------------------------------------------------


async def test_submit_sends_auth_idempotency_key_and_flattened_params(
    make_adapter: AdapterMaker, credentials: Credentials, api_key: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "job-42", "status": "queued"})

    request = submit_request(
        credentials,
        operation_type="image_to_video",
        params={
            "prompt": "a cat",
            "negative_prompt": None,
            "duration": 5,
            "seed": 7,
            "provider_options": {"motion": "high", "seed": 1, "operation": "evil"},
            "client_reference": "not-ours",
        },
        inputs=[InputRef(role="first_frame", url="https://cdn.example/a.png")],
    )
    result = await make_adapter(handler).submit(request)

    assert (result.provider_job_id, result.status, result.replayed) == ("job-42", "queued", False)
    [sent] = seen
    assert sent.method == "POST"
    assert str(sent.url) == f"{MOCK_BASE_URL}/v1/jobs"
    assert sent.headers["Idempotency-Key"] == request.idempotency_key
    assert sent.headers["Authorization"] == f"Bearer {api_key}"
    assert json.loads(sent.content) == {
        "operation": "image_to_video",
        "prompt": "a cat",
        "client_reference": str(request.generation_id),
        "duration": 5,
        "seed": 7,  # canonical params win over provider options
        "motion": "high",
        "inputs": [{"role": "first_frame", "url": "https://cdn.example/a.png"}],
    }


@pytest.mark.parametrize(("status", "replayed"), [(201, False), (200, True)])
async def test_submit_accepts_new_and_replayed_jobs(
    make_adapter: AdapterMaker, credentials: Credentials, status: int, replayed: bool
) -> None:
    adapter = make_adapter(lambda _: httpx.Response(status, json={"id": "j", "status": "queued"}))
    result = await adapter.submit(submit_request(credentials))
    assert result.replayed is replayed
    assert result.provider_job_id == "j"


async def test_submit_uses_the_accounts_base_url(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(201, json={"id": "j", "status": "queued"})

    await make_adapter(handler).submit(
        submit_request(credentials, base_url="http://other.test:81/")
    )
    assert urls == ["http://other.test:81/v1/jobs"]


SUBMIT_ERRORS = [
    (401, "unauthorized", {}, AuthFailed, None),
    (403, "forbidden", {}, AuthFailed, None),
    (429, "rate_limited", {"Retry-After": "7"}, RateLimited, 7.0),
    (429, "concurrency_limit", {}, ConcurrencyLimited, None),
    (402, "quota_exhausted", {}, QuotaExhausted, None),
    (400, "invalid_request", {}, InvalidRequest, None),
    (409, "idempotency_conflict", {}, InvalidRequest, None),
    (422, "content_rejected", {}, ContentRejected, None),
    (422, "unprocessable", {}, InvalidRequest, None),
    (418, None, {}, InvalidRequest, None),
    (404, "not_found", {}, ProviderUnavailable, None),
    (408, None, {}, ProviderUnavailable, None),
    (500, "internal_error", {}, ProviderUnavailable, None),
    (502, None, {}, SubmitOutcomeUnknown, None),  # a gateway lost the answer: the job may exist
    (503, "unavailable", {"Retry-After": "3"}, ProviderUnavailable, 3.0),
    (504, None, {"Retry-After": "3"}, SubmitOutcomeUnknown, 3.0),
]


@pytest.mark.parametrize(
    ("status", "code", "headers", "error_class", "retry_after_s"), SUBMIT_ERRORS
)
async def test_submit_translates_http_errors(
    make_adapter: AdapterMaker,
    credentials: Credentials,
    status: int,
    code: str | None,
    headers: dict[str, str],
    error_class: type[ProviderError],
    retry_after_s: float | None,
) -> None:
    adapter = make_adapter(lambda _: error_response(status, code, "details", headers))

    with pytest.raises(ProviderError) as info:
        await adapter.submit(submit_request(credentials))

    assert type(info.value) is error_class
    assert info.value.retry_after_s == retry_after_s
    assert str(status) in info.value.message


async def test_a_non_json_error_body_still_maps_by_status(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    adapter = make_adapter(lambda _: httpx.Response(429, text="<html>slow down</html>"))
    with pytest.raises(RateLimited):
        await adapter.submit(submit_request(credentials))


@pytest.mark.parametrize(
    ("network_error", "error_class"),
    [
        (httpx.ConnectError("connection refused"), ProviderUnavailable),
        (httpx.ConnectTimeout("connect timed out"), ProviderUnavailable),
        (httpx.ReadTimeout("read timed out"), SubmitOutcomeUnknown),
        (httpx.RemoteProtocolError("server disconnected"), SubmitOutcomeUnknown),
    ],
)
async def test_network_failures_on_submit_say_whether_the_job_may_exist(
    make_adapter: AdapterMaker,
    credentials: Credentials,
    network_error: httpx.TransportError,
    error_class: type[ProviderError],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise network_error

    with pytest.raises(ProviderUnavailable) as info:
        await make_adapter(handler).submit(submit_request(credentials))
    assert type(info.value) is error_class
    assert info.value.behaviour is Behaviour.RETRY


@pytest.mark.parametrize(
    "body", [{"status": "queued"}, {"id": "", "status": "queued"}, [1, 2], "not json"]
)
async def test_an_unusable_success_body_leaves_the_outcome_unknown(
    make_adapter: AdapterMaker, credentials: Credentials, body: object
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(201, text=body)
        return httpx.Response(201, json=body)

    # The sim accepted the job (201) but we cannot read its id: replaying the key finds it.
    with pytest.raises(SubmitOutcomeUnknown):
        await make_adapter(handler).submit(submit_request(credentials))


def test_submissions_are_idempotent_and_findable_by_reference() -> None:
    assert SimAdapter.submit_guarantees == SubmitGuarantees(
        idempotent=True, findable_by_reference=True
    )


async def test_unsupported_operation_fails_without_calling_the_provider(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(201, json={"id": "j", "status": "queued"})

    adapter = make_adapter(handler)
    assert not adapter.supports("text_to_speech")
    with pytest.raises(UnsupportedOperation) as info:
        await adapter.submit(submit_request(credentials, operation_type="text_to_speech"))
    assert info.value.behaviour is Behaviour.FAIL
    assert calls == []


@pytest.mark.parametrize(
    "operation",
    ["text_to_video", "image_to_video", "video_extend", "text_to_image", "image_to_image"],
)
async def test_supported_operations(make_adapter: AdapterMaker, operation: str) -> None:
    assert make_adapter(lambda _: httpx.Response(500)).supports(operation)


async def test_missing_api_key_is_auth_failed_before_any_request(
    make_adapter: AdapterMaker,
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(201, json={"id": "j", "status": "queued"})

    with pytest.raises(AuthFailed):
        await make_adapter(handler).submit(submit_request(Credentials(token="x")))
    assert calls == []


async def test_an_input_without_url_is_invalid(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    adapter = make_adapter(lambda _: httpx.Response(201, json={"id": "j", "status": "queued"}))
    request = submit_request(
        credentials, inputs=[InputRef(role="first_frame", generation_id=str(uuid4()))]
    )
    with pytest.raises(InvalidRequest, match="first_frame"):
        await adapter.submit(request)


# -- status ----------------------------------------------------------------------------------

OUTPUT = {
    "url": "https://files.sim.test/v1/files/job-1",
    "media_type": "video/mp4",
    "width": 1280,
    "height": 720,
    "duration_s": 5.0,
}

STATUS_CASES = [
    (
        {"status": "queued", "progress": 0, "output": None, "error": None},
        JobStatus(state=JobState.QUEUED, progress=0.0),
    ),
    (
        {"status": "running", "progress": 0.4, "output": None, "error": None},
        JobStatus(state=JobState.RUNNING, progress=0.4),
    ),
    (
        {"status": "succeeded", "progress": 1, "output": OUTPUT, "error": None},
        JobStatus(
            state=JobState.SUCCEEDED,
            progress=1.0,
            asset=Asset(
                url="https://files.sim.test/v1/files/job-1",
                media_type="video/mp4",
                width=1280,
                height=720,
                duration_s=5.0,
            ),
        ),
    ),
    (
        {
            "status": "failed",
            "progress": 0.7,
            "output": None,
            "error": {"code": "generation_failed", "message": "the model crashed"},
        },
        JobStatus(
            state=JobState.FAILED,
            progress=0.7,
            error=ErrorInfo(code="generation_failed", message="the model crashed"),
        ),
    ),
    (
        {"status": "failed", "output": None, "error": None},
        JobStatus(state=JobState.FAILED, error=ErrorInfo(code="provider_failed")),
    ),
    (
        {"status": "cancelled", "progress": 0.2, "output": None, "error": None},
        JobStatus(state=JobState.CANCELLED, progress=0.2),
    ),
    (
        {"status": "succeeded", "progress": 1, "output": None},
        JobStatus(
            state=JobState.FAILED,
            progress=1.0,
            error=ErrorInfo(
                code="provider_output_invalid",
                message="the provider reported success without a usable output",
            ),
        ),
    ),
    (
        {"status": "running", "progress": "half"},
        JobStatus(state=JobState.RUNNING, progress=None),
    ),
]


@pytest.mark.parametrize(("payload", "expected"), STATUS_CASES)
async def test_status_maps_every_state(
    make_adapter: AdapterMaker,
    credentials: Credentials,
    api_key: str,
    payload: dict[str, Any],
    expected: JobStatus,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "job-1", **payload})

    status = await make_adapter(handler).status(job_ref(credentials))

    assert status == expected
    assert status.terminal is expected.state.terminal
    [sent] = seen
    assert (sent.method, str(sent.url)) == ("GET", f"{MOCK_BASE_URL}/v1/jobs/job-1")
    assert sent.headers["Authorization"] == f"Bearer {api_key}"


def test_terminal_states() -> None:
    assert {s for s in JobState if s.terminal} == {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
    }


async def test_status_resolves_a_relative_output_url_and_keeps_the_poll_hint(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    payload = {"id": "job-1", "status": "succeeded", "output": {**OUTPUT, "url": "/v1/files/x"}}
    adapter = make_adapter(
        lambda _: httpx.Response(200, json=payload, headers={"Retry-After": "2"})
    )

    status = await adapter.status(job_ref(credentials))

    assert status.asset is not None
    assert str(status.asset.url) == f"{MOCK_BASE_URL}/v1/files/x"
    assert status.retry_after_s == 2.0


async def test_status_of_an_unknown_state_is_provider_unavailable(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    adapter = make_adapter(lambda _: httpx.Response(200, json={"id": "j", "status": "paused"}))
    with pytest.raises(ProviderUnavailable, match="paused"):
        await adapter.status(job_ref(credentials))


async def test_a_status_timeout_stays_provider_unavailable(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(ProviderUnavailable) as info:
        await make_adapter(handler).status(job_ref(credentials))
    assert type(info.value) is ProviderUnavailable


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (404, "not_found", JobNotFound),
        (401, "unauthorized", AuthFailed),
        (429, "rate_limited", RateLimited),
        (500, "internal_error", ProviderUnavailable),
        (503, "unavailable", ProviderUnavailable),
    ],
)
async def test_status_translates_http_errors(
    make_adapter: AdapterMaker,
    credentials: Credentials,
    status: int,
    code: str,
    error_class: type[ProviderError],
) -> None:
    adapter = make_adapter(lambda _: error_response(status, code))
    with pytest.raises(ProviderError) as info:
        await adapter.status(job_ref(credentials))
    assert type(info.value) is error_class


async def test_job_ids_are_escaped_in_paths(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"id": "x", "status": "queued"})

    await make_adapter(handler).status(job_ref(credentials, "../admin?x=1"))
    assert paths == ["/v1/jobs/..%2Fadmin%3Fx%3D1"]


# -- find by reference -----------------------------------------------------------------------


def listed(*jobs: object) -> httpx.Response:
    return httpx.Response(200, json={"data": list(jobs)})


async def test_find_by_reference_returns_the_newest_job_of_the_generation(
    make_adapter: AdapterMaker, credentials: Credentials, api_key: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return listed(
            {"id": "job-new", "status": "running", "progress": 0.3, "output": None},
            {"id": "job-old", "status": "failed", "progress": 1, "output": None},
        )

    request = submit_request(credentials)
    found = await make_adapter(handler).find_by_reference(request)

    assert found == SubmitResult(provider_job_id="job-new", status="running", replayed=True)
    [sent] = seen
    assert (sent.method, sent.url.path) == ("GET", "/v1/jobs")
    assert dict(sent.url.params) == {"client_reference": str(request.generation_id)}
    assert sent.headers["Authorization"] == f"Bearer {api_key}"
    assert "Idempotency-Key" not in sent.headers


async def test_find_by_reference_uses_the_accounts_base_url(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url.copy_with(query=None)))
        return listed()

    await make_adapter(handler).find_by_reference(
        submit_request(credentials, base_url="http://other.test:81/")
    )
    assert urls == ["http://other.test:81/v1/jobs"]


async def test_find_by_reference_without_a_job_is_none(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    assert (
        await make_adapter(lambda _: listed()).find_by_reference(submit_request(credentials))
        is None
    )


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (401, "unauthorized", AuthFailed),
        (429, "rate_limited", RateLimited),
        # No lookup route (an older sim): never to be read as "no such job".
        (404, "not_found", ProviderUnavailable),
        (500, "internal_error", ProviderUnavailable),
        (502, None, ProviderUnavailable),  # a lookup creates nothing: plainly transient
    ],
)
async def test_find_by_reference_translates_http_errors(
    make_adapter: AdapterMaker,
    credentials: Credentials,
    api_key: str,
    status: int,
    code: str | None,
    error_class: type[ProviderError],
) -> None:
    adapter = make_adapter(lambda _: error_response(status, code, f"key {api_key}"))

    with pytest.raises(ProviderError) as info:
        await adapter.find_by_reference(submit_request(credentials))

    assert type(info.value) is error_class
    assert api_key not in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        [{"id": "j", "status": "queued"}],
        {},
        {"data": {"id": "j"}},
        {"data": ["job-1"]},
        {"data": [{"status": "queued"}]},
        {"data": [{"id": "", "status": "queued"}]},
        {"data": [{"id": 7, "status": "queued"}]},
    ],
)
async def test_find_by_reference_with_an_unusable_body_is_provider_unavailable(
    make_adapter: AdapterMaker, credentials: Credentials, body: object
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(200, text=body)
        return httpx.Response(200, json=body)

    with pytest.raises(ProviderUnavailable) as info:
        await make_adapter(handler).find_by_reference(submit_request(credentials))
    assert type(info.value) is ProviderUnavailable


async def test_find_by_reference_timeouts_stay_provider_unavailable(
    make_adapter: AdapterMaker, credentials: Credentials
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(ProviderUnavailable) as info:
        await make_adapter(handler).find_by_reference(submit_request(credentials))
    assert type(info.value) is ProviderUnavailable


async def test_find_by_reference_without_an_api_key_is_auth_failed_before_any_request(
    make_adapter: AdapterMaker,
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return listed()

    with pytest.raises(AuthFailed):
        await make_adapter(handler).find_by_reference(submit_request(Credentials(token="x")))
    assert calls == []


# -- cancel ----------------------------------------------------------------------------------


async def test_cancel_posts_to_the_cancel_endpoint(
    make_adapter: AdapterMaker, credentials: Credentials, api_key: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"id": "job-1", "status": "cancelled"})

    await make_adapter(handler).cancel(job_ref(credentials))
    [sent] = seen
    assert (sent.method, str(sent.url)) == ("POST", f"{MOCK_BASE_URL}/v1/jobs/job-1/cancel")
    assert sent.headers["Authorization"] == f"Bearer {api_key}"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(404, JobNotFound), (401, AuthFailed), (500, ProviderUnavailable)],
)
async def test_cancel_translates_http_errors(
    make_adapter: AdapterMaker,
    credentials: Credentials,
    status: int,
    error_class: type[ProviderError],
) -> None:
    adapter = make_adapter(lambda _: error_response(status, "x"))
    with pytest.raises(error_class):
        await adapter.cancel(job_ref(credentials))


# -- secrets ---------------------------------------------------------------------------------


async def test_credentials_never_appear_in_errors_reprs_or_logs(
    make_adapter: AdapterMaker,
    credentials: Credentials,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("test.providers")

    def echo_the_key(request: httpx.Request) -> httpx.Response:
        # A careless provider that quotes the key back in its error messages.
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if request.method == "GET":
            return httpx.Response(
                200,
                json={"id": "j", "status": "failed", "error": {"code": "x", "message": token}},
            )
        return error_response(401, "unauthorized", f"unknown key {token}")

    adapter = make_adapter(echo_the_key)
    request = submit_request(credentials)
    with pytest.raises(AuthFailed) as info:
        await adapter.submit(request)
    log.exception("submit failed")
    log.info("request %s / %r", request, request)
    status = await adapter.status(job_ref(credentials))
    log.info("status %r", status)

    exc = info.value
    assert "***" in exc.message  # the echoed key was there, and was masked
    assert status.error is not None
    assert status.error.message == "***"
    for text in (str(exc), repr(exc), exc.to_error_info().model_dump_json(), repr(request)):
        assert api_key not in text
    assert "submit failed" in caplog.text
    assert api_key not in caplog.text
