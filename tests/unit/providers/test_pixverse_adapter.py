"""PixverseAdapter: request shape and answer mapping (MockTransport), then the sim's Pixverse
routes over real HTTP (uvicorn)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from email import policy
from email.parser import BytesParser
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from genbus.contracts import InputRef
from genbus.provider_sim import SimConfig, create_app
from genbus.providers import (
    ADAPTER_FACTORIES,
    PIXVERSE_DEFAULT_BASE_URL,
    AuthFailed,
    Behaviour,
    ConcurrencyLimited,
    ContentRejected,
    Credentials,
    InvalidRequest,
    JobNotFound,
    JobState,
    OutputRejected,
    PixverseAdapter,
    ProviderError,
    ProviderJobRef,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    SubmitGuarantees,
    SubmitOutcomeUnknown,
    SubmitRequest,
    UnsupportedOperation,
    pixverse_trace_id,
    to_pixverse_body,
)
from genbus.providers.capabilities import provider_supports
from genbus.providers.pixverse import IMAGE_TO_VIDEO_PATH, IMAGE_UPLOAD_PATH

from .servers import serve

BASE_URL = "http://pixverse.test"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def api_key() -> str:
    return f"pv-secret-{uuid4().hex}"


@pytest.fixture
def credentials(api_key: str) -> Credentials:
    return Credentials(api_key=api_key)


@pytest.fixture
async def make_adapter() -> AsyncIterator[Callable[[Handler], PixverseAdapter]]:
    made: list[PixverseAdapter] = []

    def make(handler: Handler) -> PixverseAdapter:
        adapter = PixverseAdapter(base_url=BASE_URL, transport=httpx.MockTransport(handler))
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


MakeAdapter = Callable[[Handler], PixverseAdapter]


def submit_request(credentials: Credentials, **overrides: Any) -> SubmitRequest:
    generation_id = uuid4()
    fields: dict[str, Any] = {
        "generation_id": generation_id,
        "operation_type": "text_to_video",
        "params": {"prompt": "a cat", "quality": "720p", "duration": 5},
        "idempotency_key": f"genbus-{generation_id}-1",
        "credentials": credentials,
    }
    return SubmitRequest(**{**fields, **overrides})


def envelope(resp: dict[str, Any] | None = None, code: int = 0, msg: str = "success") -> Any:
    return {"ErrCode": code, "ErrMsg": msg, "Resp": resp}


def ok(resp: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=envelope(resp))


def refuse(code: int, msg: str = "refused", status: int = 200) -> Handler:
    return lambda _: httpx.Response(status, json=envelope(None, code, msg))


def recording(seen: list[httpx.Request], response: httpx.Response) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    return handler


def ref(credentials: Credentials, job_id: str = "301") -> ProviderJobRef:
    return ProviderJobRef(provider_job_id=job_id, credentials=credentials)


def form_fields(request: httpx.Request) -> dict[str, str]:
    header = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(header + request.read())
    return {
        str(part.get_param("name", header="content-disposition")): part.get_content()
        for part in message.iter_parts()
    }


# -- submit: request shape -------------------------------------------------------------------


async def test_text_to_video_posts_the_mapped_body_with_key_and_trace_id(
    make_adapter: MakeAdapter, credentials: Credentials, api_key: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok({"video_id": 302325299692608})

    request = submit_request(
        credentials,
        params={
            "prompt": "a cat",
            "negative_prompt": "dogs",
            "quality": "1080p",
            "duration": 5,
            "aspect_ratio": "9:16",
            "seed": 7,
            "provider_options": {"style": "anime", "seed": 1, "water_mark": False},
            "client_reference": "not-sent",
        },
    )
    result = await make_adapter(handler).submit(request)

    assert result.provider_job_id == "302325299692608"
    assert result.replayed is False
    (sent,) = seen
    assert (sent.method, str(sent.url)) == (
        "POST",
        f"{BASE_URL}/openapi/v2/video/text/generate",
    )
    assert sent.headers["API-KEY"] == api_key
    assert "authorization" not in sent.headers
    assert sent.headers["Ai-trace-id"] == pixverse_trace_id(request.idempotency_key)
    assert json.loads(sent.content) == {
        "prompt": "a cat",
        "negative_prompt": "dogs",
        "quality": "1080p",
        "duration": 5,
        "aspect_ratio": "9:16",
        "seed": 7,  # canonical wins over provider_options
        "style": "anime",
        "water_mark": False,
        "model": "v4.5",
        "motion_mode": "normal",
    }


def test_trace_id_is_a_uuid_stable_per_idempotency_key() -> None:
    key = f"genbus-{uuid4()}-1"

    trace = pixverse_trace_id(key)

    assert UUID(trace)
    assert pixverse_trace_id(key) == trace
    assert pixverse_trace_id(f"{key}0") != trace
    already_uuid = str(uuid4())
    assert pixverse_trace_id(already_uuid) == already_uuid


async def test_image_to_video_uploads_the_image_url_then_generates_with_its_id(
    make_adapter: MakeAdapter, credentials: Credentials, api_key: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/openapi/v2/image/upload":
            return ok({"img_id": 4242, "img_url": "https://media.pixverse.test/a.png"})
        return ok({"video_id": 77})

    request = submit_request(
        credentials,
        operation_type="image_to_video",
        params={"quality": "540p", "duration": 8, "provider_options": {"img_id": 1}},
        inputs=[InputRef(role="image", url="https://cdn.example.com/cat.png")],
    )
    result = await make_adapter(handler).submit(request)

    assert result.provider_job_id == "77"
    upload, generate = seen
    assert str(upload.url) == f"{BASE_URL}/openapi/v2/image/upload"
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert form_fields(upload) == {"image_url": "https://cdn.example.com/cat.png"}
    assert upload.headers["API-KEY"] == api_key
    assert str(generate.url) == f"{BASE_URL}/openapi/v2/video/img/generate"
    body = json.loads(generate.content)
    assert body["img_id"] == 4242  # ours, never the provider option's
    assert "aspect_ratio" not in body  # image-to-video follows the image
    assert (body["duration"], body["quality"], body["model"]) == (8, "540p", "v4.5")
    # Each request has its own trace id; only the generate one is derived from our key.
    assert generate.headers["Ai-trace-id"] == pixverse_trace_id(request.idempotency_key)
    assert UUID(upload.headers["Ai-trace-id"])
    assert upload.headers["Ai-trace-id"] != generate.headers["Ai-trace-id"]


@pytest.mark.parametrize(
    ("operation", "params", "inputs", "match"),
    [
        ("text_to_video", {"quality": "720p"}, [], "prompt"),
        ("text_to_video", {"prompt": "x", "quality": "4k"}, [], "quality"),
        ("text_to_video", {"prompt": "x", "duration": 6}, [], "duration"),
        ("text_to_video", {"prompt": "x", "duration": [5]}, [], "duration"),
        ("text_to_video", {"prompt": "x", "quality": "1080p", "duration": 8}, [], "1080p"),
        ("text_to_video", {"prompt": "x", "motion_mode": "fast", "duration": 8}, [], "fast"),
        ("text_to_video", {"prompt": "x", "seed": 2**31}, [], "seed"),
        ("text_to_video", {"prompt": "x", "provider_options": ["x"]}, [], "provider_options"),
        ("image_to_video", {"prompt": "x"}, [], "image input"),
        (
            "image_to_video",
            {"prompt": "x"},
            [InputRef(role="image", generation_id="g-1")],
            "no url",
        ),
    ],
)
async def test_invalid_params_are_refused_before_any_request(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    operation: str,
    params: dict[str, Any],
    inputs: list[InputRef],
    match: str,
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(recording(seen, ok({"video_id": 1})))

    with pytest.raises(InvalidRequest, match=match) as info:
        await adapter.submit(
            submit_request(credentials, operation_type=operation, params=params, inputs=inputs)
        )

    assert info.value.behaviour is Behaviour.FAIL
    assert seen == []


def test_integral_float_durations_become_integers() -> None:
    body = to_pixverse_body("text_to_video", {"prompt": "x", "duration": 8.0})

    assert body["duration"] == 8
    assert isinstance(body["duration"], int)


async def test_unsupported_operation(make_adapter: MakeAdapter, credentials: Credentials) -> None:
    adapter = make_adapter(lambda _: ok({"video_id": 1}))

    assert adapter.supports("image_to_video")
    assert not adapter.supports("text_to_image")
    with pytest.raises(UnsupportedOperation):
        await adapter.submit(submit_request(credentials, operation_type="text_to_image"))
    with pytest.raises(UnsupportedOperation):
        to_pixverse_body("video_extend", {"prompt": "x"})


# -- submit: answers -------------------------------------------------------------------------

ERR_CODES: list[tuple[int, type[ProviderError], Behaviour]] = [
    (10002, AuthFailed, Behaviour.DISABLE_ACCOUNT),
    (10003, AuthFailed, Behaviour.DISABLE_ACCOUNT),
    (10005, AuthFailed, Behaviour.DISABLE_ACCOUNT),
    (500063, ContentRejected, Behaviour.FAIL),
    (500054, OutputRejected, Behaviour.RETRY),
    (500090, QuotaExhausted, Behaviour.ROTATE),
    (500043, QuotaExhausted, Behaviour.ROTATE),
    (500044, ConcurrencyLimited, Behaviour.ROTATE),
    (400017, InvalidRequest, Behaviour.FAIL),
    (400018, InvalidRequest, Behaviour.FAIL),
    (400019, InvalidRequest, Behaviour.FAIL),
    (500069, ProviderUnavailable, Behaviour.RETRY),
]


@pytest.mark.parametrize(("err_code", "error_class", "behaviour"), ERR_CODES)
async def test_err_codes_map_to_the_taxonomy(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    api_key: str,
    err_code: int,
    error_class: type[ProviderError],
    behaviour: Behaviour,
) -> None:
    adapter = make_adapter(refuse(err_code, f"no thanks for {api_key}"))

    with pytest.raises(error_class) as info:
        await adapter.submit(submit_request(credentials))

    assert type(info.value) is error_class
    assert info.value.behaviour is behaviour
    assert str(err_code) in info.value.message
    assert api_key not in info.value.message


async def test_output_rejected_has_its_own_stable_code(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    with pytest.raises(OutputRejected) as info:
        await make_adapter(refuse(500054)).submit(submit_request(credentials))

    assert info.value.code == "output_rejected"
    assert info.value.to_error_info().retryable is True


async def test_an_unknown_err_code_is_a_retried_provider_error_naming_the_code(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    with pytest.raises(ProviderError) as info:
        await make_adapter(refuse(612345, "what")).submit(submit_request(credentials))

    assert type(info.value) is ProviderError
    assert info.value.behaviour is Behaviour.RETRY
    assert "612345" in info.value.message


async def test_an_err_code_wins_over_a_non_200_http_status(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    # Pixverse documents upload moderation as HTTP 500 with lower-case keys.
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"err_code": 500052, "err_msg": "image refused"})

    request = submit_request(
        credentials,
        operation_type="image_to_video",
        inputs=[InputRef(role="image", url="https://cdn.example.com/x.png")],
    )
    with pytest.raises(ContentRejected, match="500052"):
        await make_adapter(handler).submit(request)


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        (httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), RateLimited),
        (httpx.Response(429, headers={"Retry-After": "7"}, json=envelope(None, 0)), RateLimited),
        (httpx.Response(401, text="no"), AuthFailed),
        (httpx.Response(403, json={"detail": "no"}), AuthFailed),
        (httpx.Response(400, text="bad"), InvalidRequest),
        (httpx.Response(404, text="gone"), ProviderUnavailable),
        (httpx.Response(503, headers={"Retry-After": "7"}), ProviderUnavailable),
        # A gateway lost Pixverse's answer, or Pixverse answered 200 without a usable video id:
        # the video may exist, and resubmitting would bill a second one.
        (httpx.Response(502, text="bad gateway"), SubmitOutcomeUnknown),
        (httpx.Response(504, headers={"Retry-After": "7"}), SubmitOutcomeUnknown),
        (httpx.Response(200, text="<html>"), SubmitOutcomeUnknown),
        (httpx.Response(200, json=[1, 2]), SubmitOutcomeUnknown),
        (httpx.Response(200, json={"Resp": {"video_id": 1}}), SubmitOutcomeUnknown),
        (httpx.Response(200, json=envelope({"video_id": "12"})), SubmitOutcomeUnknown),
        (httpx.Response(200, json=envelope({})), SubmitOutcomeUnknown),
        (httpx.Response(200, json=envelope(None)), SubmitOutcomeUnknown),
    ],
)
async def test_http_level_answers(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    response: httpx.Response,
    error_class: type[ProviderError],
) -> None:
    with pytest.raises(error_class) as info:
        await make_adapter(lambda _: response).submit(submit_request(credentials))

    assert type(info.value) is error_class
    if "Retry-After" in response.headers:
        assert info.value.retry_after_s == 7.0


async def test_network_failures_are_provider_unavailable(
    make_adapter: MakeAdapter, credentials: Credentials, api_key: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused for {api_key}", request=request)

    with pytest.raises(ProviderUnavailable) as info:
        await make_adapter(handler).submit(submit_request(credentials))

    assert type(info.value) is ProviderUnavailable  # never sent: no video can exist
    assert api_key not in info.value.message


@pytest.mark.parametrize(
    "exc_type", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
async def test_a_generate_call_that_may_have_been_sent_leaves_the_outcome_unknown(
    make_adapter: MakeAdapter, credentials: Credentials, exc_type: type[httpx.RequestError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("no answer", request=request)

    with pytest.raises(SubmitOutcomeUnknown) as info:
        await make_adapter(handler).submit(submit_request(credentials))

    assert type(info.value.__cause__) is exc_type


def image_request(credentials: Credentials) -> SubmitRequest:
    return submit_request(
        credentials,
        operation_type="image_to_video",
        inputs=[InputRef(role="image", url="https://cdn.example.com/cat.png")],
    )


def failing_on(path: str, failure: httpx.Response | type[httpx.RequestError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == path:
            if isinstance(failure, httpx.Response):
                return failure
            raise failure("no answer", request=request)
        if request.url.path == IMAGE_UPLOAD_PATH:
            return ok({"img_id": 4242})
        return ok({"video_id": 77})

    return handler


UNANSWERED: list[httpx.Response | type[httpx.RequestError]] = [
    httpx.ReadTimeout,
    httpx.RemoteProtocolError,
    httpx.Response(502),
    httpx.Response(504),
    httpx.Response(200, text="<html>"),
]


@pytest.mark.parametrize("failure", UNANSWERED)
async def test_an_unanswered_image_upload_stays_provider_unavailable(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    failure: httpx.Response | type[httpx.RequestError],
) -> None:
    seen: list[str] = []
    handler = failing_on(IMAGE_UPLOAD_PATH, failure)

    def recording_paths(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return handler(request)

    with pytest.raises(ProviderUnavailable) as info:
        await make_adapter(recording_paths).submit(image_request(credentials))

    # An upload bills nothing, so it is retried as usual; no video was asked for.
    assert type(info.value) is ProviderUnavailable
    assert seen == [IMAGE_UPLOAD_PATH]


@pytest.mark.parametrize("failure", UNANSWERED)
async def test_an_unanswered_image_to_video_generate_leaves_the_outcome_unknown(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    failure: httpx.Response | type[httpx.RequestError],
) -> None:
    adapter = make_adapter(failing_on(IMAGE_TO_VIDEO_PATH, failure))

    with pytest.raises(SubmitOutcomeUnknown):
        await adapter.submit(image_request(credentials))


def test_submissions_are_neither_idempotent_nor_findable() -> None:
    assert PixverseAdapter.submit_guarantees == SubmitGuarantees(
        idempotent=False, findable_by_reference=False
    )


async def test_find_by_reference_is_unsupported_without_a_request(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(recording(seen, ok({"video_id": 1})))

    with pytest.raises(UnsupportedOperation) as info:
        await adapter.find_by_reference(submit_request(credentials))

    assert info.value.behaviour is Behaviour.FAIL
    assert seen == []


async def test_missing_api_key_is_auth_failed_without_a_request(
    make_adapter: MakeAdapter,
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(recording(seen, ok({"video_id": 1})))

    with pytest.raises(AuthFailed):
        await adapter.submit(submit_request(Credentials(token="x")))
    assert seen == []


# -- status ----------------------------------------------------------------------------------


def video(status: int, **fields: Any) -> dict[str, Any]:
    return {"id": 301, "status": status, **fields}


DONE = {"url": "https://media.pixverse.test/v.mp4", "outputWidth": 1280, "outputHeight": 720}


@pytest.mark.parametrize(
    ("resp", "state", "error_code"),
    [
        (video(1, **DONE, duration=5), JobState.SUCCEEDED, None),
        (video(10, **DONE), JobState.SUCCEEDED, None),
        (video(10, url="", outputWidth=0, outputHeight=0), JobState.RUNNING, None),
        (video(10, url="https://m.test/v.mp4", outputWidth=1280), JobState.RUNNING, None),
        (video(0), JobState.RUNNING, None),
        (video(2), JobState.RUNNING, None),
        (video(5), JobState.RUNNING, None),
        (video(3), JobState.FAILED, "content_rejected"),
        (video(7), JobState.FAILED, "content_rejected"),
        (video(17), JobState.FAILED, "content_rejected"),
        (video(-1), JobState.FAILED, "generation_failed"),
        (video(4), JobState.FAILED, "generation_failed"),
        (video(8), JobState.FAILED, "generation_failed"),
        (video(9), JobState.FAILED, "generation_failed"),
        (video(1, url=""), JobState.FAILED, "provider_output_invalid"),
        (video(1, url="not a url"), JobState.FAILED, "provider_output_invalid"),
    ],
)
async def test_video_statuses_map_to_job_states(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    resp: dict[str, Any],
    state: JobState,
    error_code: str | None,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(resp)

    status = await make_adapter(handler).status(ref(credentials))

    assert status.state is state
    assert (status.error.code if status.error else None) == error_code
    (sent,) = seen
    assert (sent.method, sent.url.path) == ("GET", "/openapi/v2/video/result/301")
    assert UUID(sent.headers["Ai-trace-id"])


async def test_a_finished_video_becomes_an_asset(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    status = await make_adapter(lambda _: ok(video(1, **DONE, duration=8))).status(ref(credentials))

    assert status.asset is not None
    assert str(status.asset.url) == DONE["url"]
    assert status.asset.media_type == "video/mp4"
    assert (status.asset.width, status.asset.height, status.asset.duration_s) == (1280, 720, 8.0)
    assert status.progress == 1.0


async def test_every_status_call_has_a_fresh_trace_id(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    traces: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        traces.append(request.headers["Ai-trace-id"])
        return ok(video(5))

    adapter = make_adapter(handler)
    await adapter.status(ref(credentials))
    await adapter.status(ref(credentials))

    assert len(set(traces)) == 2


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        (httpx.Response(200, json=envelope(None, 500008, "not found")), JobNotFound),
        (httpx.Response(404, text="no"), JobNotFound),
        (httpx.Response(200, json=envelope(None, 10002, "bad key")), AuthFailed),
        (httpx.Response(429, headers={"Retry-After": "3"}), RateLimited),
        (httpx.Response(503), ProviderUnavailable),
        # Polling creates nothing: a lost answer is plainly transient.
        (httpx.Response(502), ProviderUnavailable),
        (httpx.Response(504), ProviderUnavailable),
        (httpx.Response(200, text="<html>"), ProviderUnavailable),
        (httpx.Response(200, json=envelope({"id": 301})), ProviderUnavailable),
        (httpx.Response(200, json=envelope(video(42))), ProviderUnavailable),
        (httpx.Response(200, json=envelope(video(True))), ProviderUnavailable),
    ],
)
async def test_status_errors(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    response: httpx.Response,
    error_class: type[ProviderError],
) -> None:
    with pytest.raises(error_class) as info:
        await make_adapter(lambda _: response).status(ref(credentials))

    assert type(info.value) is error_class


async def test_output_rejected_on_the_result_endpoint_ends_the_job_retryably(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    status = await make_adapter(refuse(500054, "inappropriate")).status(ref(credentials))

    assert status.state is JobState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.retryable) == ("output_rejected", True)


async def test_a_non_numeric_job_id_is_not_found_without_a_request(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(recording(seen, ok(video(5))))

    for job_id in ("abc", "../1", "", "\uff11\uff12"):
        with pytest.raises(JobNotFound):
            await adapter.status(ref(credentials, job_id))
    assert seen == []


async def test_cancel_is_a_documented_no_op(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(recording(seen, ok({})))

    await adapter.cancel(ref(credentials))

    assert seen == []


async def test_registered_with_its_operations_and_default_base_url() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return ok(video(5))

    factory = ADAPTER_FACTORIES["pixverse"]
    adapter = factory(transport=httpx.MockTransport(handler))
    try:
        assert isinstance(adapter, PixverseAdapter)
        assert adapter.provider_id == "pixverse"
        await adapter.status(ref(Credentials(api_key="k"), "9"))
    finally:
        await adapter.aclose()
    assert urls == [f"{PIXVERSE_DEFAULT_BASE_URL}/openapi/v2/video/result/9"]
    assert provider_supports("pixverse", "image_to_video")
    assert not provider_supports("pixverse", "text_to_image")


# -- against the sim's Pixverse routes, over real HTTP ---------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SIM_KEY = "pv-live-key"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def live(clock: Clock) -> AsyncIterator[tuple[PixverseAdapter, Any, str]]:
    config = SimConfig(
        keys=[SIM_KEY, "pv-other-key"], seed=7, duration_s=10.0, duration_jitter_s=0.0
    )
    app = create_app(config, clock=clock)
    async with serve(app) as base_url, PixverseAdapter(base_url=base_url) as adapter:
        yield adapter, app.state.sim, base_url


def live_request(prompt: str = "a cat", key: str = SIM_KEY, **overrides: Any) -> SubmitRequest:
    params = {"prompt": prompt, "quality": "720p", "duration": 8}
    return submit_request(Credentials(api_key=key), params=params, **overrides)


async def test_live_text_to_video_lifecycle(
    live: tuple[PixverseAdapter, Any, str], clock: Clock
) -> None:
    adapter, sim, base_url = live
    request = live_request()

    result = await adapter.submit(request)
    job = ProviderJobRef(provider_job_id=result.provider_job_id, credentials=request.credentials)
    running = await adapter.status(job)
    clock.now += 10.0
    done = await adapter.status(job)

    assert result.provider_job_id.isdigit()
    assert running.state is JobState.RUNNING
    assert done.state is JobState.SUCCEEDED
    assert done.asset is not None
    assert str(done.asset.url) == f"{base_url}/v1/files/{result.provider_job_id}"
    assert (done.asset.width, done.asset.height, done.asset.duration_s) == (1280, 720, 8.0)
    async with httpx.AsyncClient() as client:
        assert (await client.get(str(done.asset.url))).content.startswith(b"\x00\x00\x00\x18ftyp")
    stats = sim.stats()
    assert (stats["submissions"], stats["status_requests"]) == (1, 2)


async def test_live_image_to_video_uploads_first(live: tuple[PixverseAdapter, Any, str]) -> None:
    adapter, sim, _ = live
    request = live_request(
        operation_type="image_to_video",
        inputs=[InputRef(role="image", url="https://cdn.example.com/cat.png")],
    )

    result = await adapter.submit(request)

    assert result.provider_job_id.isdigit()
    assert sim.stats()["image_uploads"] == 1
    assert sim.stats()["submissions"] == 1


async def test_live_replay_is_traced_as_a_duplicate_reference(
    live: tuple[PixverseAdapter, Any, str],
) -> None:
    adapter, sim, _ = live
    request = live_request()

    first = await adapter.submit(request)
    again = await adapter.submit(request)

    # Pixverse has no idempotency: a replay is a second job, which the oracle sees.
    assert first.provider_job_id != again.provider_job_id
    stats = sim.stats()
    assert stats["duplicate_references"] == 1
    assert stats["duplicated_references"] == [pixverse_trace_id(request.idempotency_key)]


async def test_live_refusals(live: tuple[PixverseAdapter, Any, str], clock: Clock) -> None:
    adapter, sim, _ = live

    with pytest.raises(AuthFailed, match="10002"):
        await adapter.submit(live_request(key="pv-unknown"))
    with pytest.raises(ContentRejected, match="500063"):
        await adapter.submit(live_request("a [reject] cat"))
    with pytest.raises(JobNotFound, match="500008"):
        await adapter.status(ref(Credentials(api_key=SIM_KEY), "12345"))

    failing = await adapter.submit(live_request("a [fail] cat"))
    clock.now += 10.0
    failed = await adapter.status(
        ProviderJobRef(
            provider_job_id=failing.provider_job_id, credentials=Credentials(api_key=SIM_KEY)
        )
    )
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert failed.error.code == "generation_failed"

    # Another key's job is not found.
    with pytest.raises(JobNotFound):
        await adapter.status(ref(Credentials(api_key="pv-other-key"), failing.provider_job_id))

    sim.update_config({"per_key_concurrency": 1})
    await adapter.submit(live_request())
    with pytest.raises(ConcurrencyLimited, match="500044"):
        await adapter.submit(live_request())

    sim.update_config({"per_key_concurrency": None, "default_credits": 0})
    with pytest.raises(QuotaExhausted, match="500090"):
        await adapter.submit(live_request())

    sim.update_config({"default_credits": None, "rate_limit_rate": 1.0, "retry_after_s": 4})
    with pytest.raises(RateLimited) as limited:
        await adapter.submit(live_request())
    assert limited.value.retry_after_s == 4.0

    sim.update_config({"rate_limit_rate": 0.0, "error_5xx_rate": 1.0})
    with pytest.raises(ProviderUnavailable):
        await adapter.submit(live_request())

    assert sim.stats()["concurrency_violations"] == 0
