"""ReplicateAdapter: request shape and answer mapping (MockTransport), then a small fake of
Replicate's documented predictions API over real HTTP (uvicorn)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from genbus.contracts import InputRef
from genbus.providers import (
    ADAPTER_FACTORIES,
    REPLICATE_DEFAULT_BASE_URL,
    AuthFailed,
    Behaviour,
    Credentials,
    InvalidRequest,
    JobNotFound,
    JobState,
    ProviderError,
    ProviderJobRef,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    ReplicateAdapter,
    ReplicateModel,
    SubmitGuarantees,
    SubmitOutcomeUnknown,
    SubmitRequest,
    UnsupportedOperation,
)
from genbus.providers.capabilities import provider_supports

from .servers import serve

BASE_URL = "http://replicate.test"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
Handler = Callable[[httpx.Request], httpx.Response]
MakeAdapter = Callable[..., ReplicateAdapter]


@pytest.fixture
def token() -> str:
    return f"r8_secret_{uuid4().hex}"


@pytest.fixture
def credentials(token: str) -> Credentials:
    return Credentials(api_key=token)


@pytest.fixture
async def make_adapter() -> AsyncIterator[MakeAdapter]:
    made: list[ReplicateAdapter] = []

    def make(handler: Handler, **kwargs: Any) -> ReplicateAdapter:
        adapter = ReplicateAdapter(
            base_url=BASE_URL, transport=httpx.MockTransport(handler), **kwargs
        )
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


def recording(seen: list[httpx.Request], response: httpx.Response) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    return handler


def prediction(status: str = "starting", **fields: Any) -> dict[str, Any]:
    return {"id": "gm3qorzdhgbfurvjtvhg6dckhu", "status": status, "output": None, **fields}


def created() -> httpx.Response:
    return httpx.Response(201, json=prediction())


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


def ref(credentials: Credentials, job_id: str = "gm3qorzdhgbfurvjtvhg6dckhu") -> ProviderJobRef:
    return ProviderJobRef(provider_job_id=job_id, credentials=credentials)


# -- submit: request shape -------------------------------------------------------------------


async def test_create_posts_the_mapped_input_to_the_models_endpoint(
    make_adapter: MakeAdapter, credentials: Credentials, token: str
) -> None:
    seen: list[httpx.Request] = []
    request = submit_request(
        credentials,
        params={
            "prompt": "a cat",
            "negative_prompt": "dogs",
            "quality": "720p",
            "duration": 5,
            "aspect_ratio": "9:16",
            "seed": 2**40,
            "model": "acme/video-model",
            "provider_options": {"resolution": "720p", "seed": 1, "fps": 24},
        },
    )

    result = await make_adapter(recording(seen, created())).submit(request)

    assert (result.provider_job_id, result.status, result.replayed) == (
        "gm3qorzdhgbfurvjtvhg6dckhu",
        "queued",
        False,
    )
    (sent,) = seen
    assert (sent.method, str(sent.url)) == (
        "POST",
        f"{BASE_URL}/v1/models/acme/video-model/predictions",
    )
    assert sent.headers["Authorization"] == f"Bearer {token}"
    # Async creation, and no idempotency header: Replicate documents none.
    assert "prefer" not in sent.headers
    assert "idempotency-key" not in sent.headers
    assert json.loads(sent.content) == {
        "input": {
            "prompt": "a cat",
            "negative_prompt": "dogs",
            "duration": 5,
            "aspect_ratio": "9:16",
            "seed": 2**40,  # canonical wins over provider_options
            "resolution": "720p",
            "fps": 24,
        }
    }


@pytest.mark.parametrize(
    ("operation", "inputs", "path", "image_field"),
    [
        ("text_to_video", [], "/v1/models/wan-video/wan-2.2-t2v-fast/predictions", None),
        (
            "image_to_video",
            [InputRef(role="image", url="https://cdn.example.com/a.png")],
            "/v1/models/wan-video/wan-2.2-i2v-fast/predictions",
            "image",
        ),
        ("text_to_image", [], "/v1/models/black-forest-labs/flux-schnell/predictions", None),
        (
            "image_to_image",
            [InputRef(role="image", url="https://cdn.example.com/a.png")],
            "/v1/models/black-forest-labs/flux-kontext-pro/predictions",
            "input_image",
        ),
    ],
)
async def test_each_operation_has_a_default_model(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    operation: str,
    inputs: list[InputRef],
    path: str,
    image_field: str | None,
) -> None:
    seen: list[httpx.Request] = []

    await make_adapter(recording(seen, created())).submit(
        submit_request(credentials, operation_type=operation, inputs=inputs)
    )

    (sent,) = seen
    assert sent.url.path == path
    body_input = json.loads(sent.content)["input"]
    if image_field is not None:
        assert body_input[image_field] == "https://cdn.example.com/a.png"
    else:
        assert not {"image", "input_image"} & set(body_input)


@pytest.mark.parametrize(
    ("model", "path", "body_extra", "image_field"),
    [
        (f"acme/img:{VERSION}", "/v1/predictions", {"version": VERSION}, "image"),
        (VERSION, "/v1/predictions", {"version": VERSION}, "image"),
        (
            f"black-forest-labs/flux-kontext-pro:{VERSION}",
            "/v1/predictions",
            {"version": VERSION},
            "input_image",
        ),
        ("acme/img", "/v1/models/acme/img/predictions", {}, "image"),
    ],
)
async def test_model_refs_choose_the_create_call(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    model: str,
    path: str,
    body_extra: dict[str, str],
    image_field: str,
) -> None:
    seen: list[httpx.Request] = []
    request = submit_request(
        credentials,
        operation_type="image_to_image",
        params={"prompt": "x", "model": model},
        inputs=[InputRef(role="image", url="https://cdn.example.com/a.png")],
    )

    await make_adapter(recording(seen, created())).submit(request)

    (sent,) = seen
    assert sent.url.path == path
    body = json.loads(sent.content)
    assert {k: v for k, v in body.items() if k != "input"} == body_extra
    assert body["input"][image_field] == "https://cdn.example.com/a.png"


async def test_default_models_are_configurable(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(
        recording(seen, created()),
        default_models={"image_to_video": ReplicateModel("acme/i2v", "start_image")},
    )

    await adapter.submit(
        submit_request(
            credentials,
            operation_type="image_to_video",
            inputs=[InputRef(role="image", url="https://cdn.example.com/a.png")],
        )
    )

    (sent,) = seen
    assert sent.url.path == "/v1/models/acme/i2v/predictions"
    assert json.loads(sent.content)["input"]["start_image"] == "https://cdn.example.com/a.png"


@pytest.mark.parametrize(
    ("params", "operation", "inputs", "error_class"),
    [
        ({"prompt": "x", "model": "no-slash"}, "text_to_image", [], InvalidRequest),
        ({"prompt": "x", "model": "a/b/c"}, "text_to_image", [], InvalidRequest),
        ({"prompt": "x", "model": "a/b:short"}, "text_to_image", [], InvalidRequest),
        ({"prompt": "x", "model": ""}, "text_to_image", [], InvalidRequest),
        ({"prompt": "x", "model": 3}, "text_to_image", [], InvalidRequest),
        ({"prompt": "x", "provider_options": "nope"}, "text_to_image", [], InvalidRequest),
        (
            {"prompt": "x"},
            "image_to_image",
            [InputRef(role="image", generation_id="g-1")],
            InvalidRequest,
        ),
        ({"prompt": "x"}, "video_extend", [], UnsupportedOperation),
    ],
)
async def test_bad_requests_are_refused_before_any_call(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    params: dict[str, Any],
    operation: str,
    inputs: list[InputRef],
    error_class: type[ProviderError],
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(recording(seen, created()))

    with pytest.raises(error_class) as info:
        await adapter.submit(
            submit_request(credentials, operation_type=operation, params=params, inputs=inputs)
        )

    assert info.value.behaviour is Behaviour.FAIL
    assert seen == []


# -- submit: answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class", "behaviour"),
    [
        (400, InvalidRequest, Behaviour.FAIL),
        (401, AuthFailed, Behaviour.DISABLE_ACCOUNT),
        (402, QuotaExhausted, Behaviour.ROTATE),
        (403, AuthFailed, Behaviour.DISABLE_ACCOUNT),
        (404, InvalidRequest, Behaviour.FAIL),  # no such model
        (409, InvalidRequest, Behaviour.FAIL),
        (422, InvalidRequest, Behaviour.FAIL),
        (429, RateLimited, Behaviour.BACK_OFF),
        (408, ProviderUnavailable, Behaviour.RETRY),
        (500, ProviderUnavailable, Behaviour.RETRY),
        (503, ProviderUnavailable, Behaviour.RETRY),
    ],
)
async def test_create_errors_map_to_the_taxonomy(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    token: str,
    status: int,
    error_class: type[ProviderError],
    behaviour: Behaviour,
) -> None:
    problem = {"title": "Nope", "detail": f"token {token} says no", "status": status}
    response = httpx.Response(status, json=problem, headers={"Retry-After": "12"})

    with pytest.raises(error_class) as info:
        await make_adapter(lambda _: response).submit(submit_request(credentials))

    assert type(info.value) is error_class
    assert info.value.behaviour is behaviour
    assert info.value.retry_after_s == 12.0
    assert f"HTTP {status}" in info.value.message
    assert "Nope" in info.value.message
    assert token not in info.value.message


@pytest.mark.parametrize("status", [502, 504])
async def test_a_create_whose_answer_a_gateway_lost_leaves_the_outcome_unknown(
    make_adapter: MakeAdapter, credentials: Credentials, status: int
) -> None:
    response = httpx.Response(status, text="upstream gone", headers={"Retry-After": "12"})

    with pytest.raises(SubmitOutcomeUnknown) as info:
        await make_adapter(lambda _: response).submit(submit_request(credentials))

    assert f"HTTP {status}" in info.value.message
    assert info.value.retry_after_s == 12.0


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, text="<html>"),
        httpx.Response(201, json=["x"]),
        httpx.Response(201, json={"status": "starting"}),
        httpx.Response(201, json={"id": "", "status": "starting"}),
    ],
)
async def test_an_accepted_create_without_a_usable_answer_leaves_the_outcome_unknown(
    make_adapter: MakeAdapter, credentials: Credentials, response: httpx.Response
) -> None:
    # Replicate created the prediction; we only lost its id.
    with pytest.raises(SubmitOutcomeUnknown):
        await make_adapter(lambda _: response).submit(submit_request(credentials))


@pytest.mark.parametrize(
    ("exc_type", "error_class"),
    [
        (httpx.ConnectError, ProviderUnavailable),
        (httpx.ConnectTimeout, ProviderUnavailable),
        (httpx.PoolTimeout, ProviderUnavailable),
        (httpx.ReadTimeout, SubmitOutcomeUnknown),
        (httpx.WriteError, SubmitOutcomeUnknown),
        (httpx.RemoteProtocolError, SubmitOutcomeUnknown),
    ],
)
async def test_network_failures_on_create_say_whether_the_prediction_may_exist(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    exc_type: type[httpx.RequestError],
    error_class: type[ProviderError],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("slow", request=request)

    with pytest.raises(ProviderUnavailable) as info:
        await make_adapter(handler).submit(submit_request(credentials))

    assert type(info.value) is error_class


async def test_a_status_timeout_stays_provider_unavailable(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderUnavailable, match="timed out") as info:
        await make_adapter(handler).status(ref(credentials))

    assert type(info.value) is ProviderUnavailable


def test_submissions_are_neither_idempotent_nor_findable() -> None:
    assert ReplicateAdapter.submit_guarantees == SubmitGuarantees(
        idempotent=False, findable_by_reference=False
    )


async def test_find_by_reference_is_unsupported_without_a_request(
    make_adapter: MakeAdapter, credentials: Credentials
) -> None:
    seen: list[httpx.Request] = []
    adapter = make_adapter(recording(seen, created()))

    with pytest.raises(UnsupportedOperation) as info:
        await adapter.find_by_reference(submit_request(credentials))

    assert info.value.behaviour is Behaviour.FAIL
    assert seen == []


# -- status and cancel -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "state", "error_code"),
    [
        (prediction("starting"), JobState.QUEUED, None),
        (prediction("processing", logs="step 3/30"), JobState.RUNNING, None),
        (prediction("succeeded", output="https://r.test/o.mp4"), JobState.SUCCEEDED, None),
        (prediction("failed", error="CUDA out of memory"), JobState.FAILED, "generation_failed"),
        (prediction("failed"), JobState.FAILED, "generation_failed"),
        (prediction("canceled"), JobState.CANCELLED, None),
        (prediction("aborted"), JobState.FAILED, "aborted"),
        (prediction("succeeded"), JobState.FAILED, "provider_output_invalid"),
        (prediction("succeeded", output=[]), JobState.FAILED, "provider_output_invalid"),
        (prediction("succeeded", output={"a": 1}), JobState.FAILED, "provider_output_invalid"),
        (prediction("succeeded", output="not a url"), JobState.FAILED, "provider_output_invalid"),
    ],
)
async def test_prediction_statuses_map_to_job_states(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    token: str,
    body: dict[str, Any],
    state: JobState,
    error_code: str | None,
) -> None:
    seen: list[httpx.Request] = []

    status = await make_adapter(recording(seen, httpx.Response(200, json=body))).status(
        ref(credentials)
    )

    assert status.state is state
    assert (status.error.code if status.error else None) == error_code
    assert status.terminal is state.terminal
    (sent,) = seen
    assert (sent.method, sent.url.path) == ("GET", "/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu")
    assert sent.headers["Authorization"] == f"Bearer {token}"


async def test_a_failed_prediction_keeps_its_error_message_without_secrets(
    make_adapter: MakeAdapter, credentials: Credentials, token: str
) -> None:
    body = prediction("failed", error=f"model crashed reading {token}")

    status = await make_adapter(lambda _: httpx.Response(200, json=body)).status(ref(credentials))

    assert status.error is not None
    assert "model crashed" in status.error.message
    assert token not in status.error.message


@pytest.mark.parametrize(
    ("output", "url", "media_type"),
    [
        ("https://r.test/out.mp4", "https://r.test/out.mp4", "video/mp4"),
        (["https://r.test/a.webp", "https://r.test/b.webp"], "https://r.test/a.webp", "image/webp"),
        ("https://r.test/out.png?sig=1", "https://r.test/out.png?sig=1", "image/png"),
        ("https://r.test/blob", "https://r.test/blob", "application/octet-stream"),
    ],
)
async def test_outputs_become_assets_with_a_guessed_media_type(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    output: object,
    url: str,
    media_type: str,
) -> None:
    body = prediction("succeeded", output=output)

    status = await make_adapter(lambda _: httpx.Response(200, json=body)).status(ref(credentials))

    assert status.asset is not None
    assert (str(status.asset.url), status.asset.media_type) == (url, media_type)
    assert status.progress == 1.0


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        (httpx.Response(404, json={"detail": "Not found."}), JobNotFound),
        (httpx.Response(401, json={"detail": "bad token"}), AuthFailed),
        (httpx.Response(429, headers={"Retry-After": "2"}), RateLimited),
        (httpx.Response(500), ProviderUnavailable),
        (httpx.Response(502), ProviderUnavailable),  # polling creates nothing
        (httpx.Response(200, json=prediction("exploded")), ProviderUnavailable),
        (httpx.Response(200, json={"id": "x"}), ProviderUnavailable),
        (httpx.Response(200, text="nope"), ProviderUnavailable),
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


async def test_cancel_posts_to_the_cancel_url(
    make_adapter: MakeAdapter, credentials: Credentials, token: str
) -> None:
    seen: list[httpx.Request] = []

    await make_adapter(recording(seen, httpx.Response(200, json=prediction("canceled")))).cancel(
        ref(credentials, "abc/def")
    )

    (sent,) = seen
    assert sent.method == "POST"
    assert sent.url.raw_path == b"/v1/predictions/abc%2Fdef/cancel"
    assert sent.headers["Authorization"] == f"Bearer {token}"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(404, JobNotFound), (401, AuthFailed), (503, ProviderUnavailable)],
)
async def test_cancel_errors(
    make_adapter: MakeAdapter,
    credentials: Credentials,
    status: int,
    error_class: type[ProviderError],
) -> None:
    with pytest.raises(error_class):
        await make_adapter(lambda _: httpx.Response(status)).cancel(ref(credentials))


async def test_registered_with_its_operations_and_default_base_url() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json=prediction("canceled"))

    adapter = ADAPTER_FACTORIES["replicate"](transport=httpx.MockTransport(handler))
    try:
        assert isinstance(adapter, ReplicateAdapter)
        assert adapter.provider_id == "replicate"
        await adapter.cancel(ref(Credentials(api_key="k"), "p1"))
    finally:
        await adapter.aclose()
    assert urls == [f"{REPLICATE_DEFAULT_BASE_URL}/v1/predictions/p1/cancel"]
    for operation in ("text_to_video", "image_to_video", "text_to_image", "image_to_image"):
        assert provider_supports("replicate", operation)
    assert not provider_supports("replicate", "video_extend")


# -- against a fake of Replicate's predictions API, over real HTTP ---------------------------


@dataclass
class FakeReplicate:
    """Replicate's documented behaviour, reduced: the test moves predictions along."""

    token: str
    base_url: str = ""
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"title": detail, "detail": detail, "status": status},
        status,
        headers=headers,
        media_type="application/problem+json",
    )


def build_fake(fake: FakeReplicate) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        if request.headers.get("Authorization") != f"Bearer {fake.token}":
            return _problem(401, "You did not pass a valid authentication token")
        return await call_next(request)

    def create(body: dict[str, Any], model: str) -> JSONResponse:
        if body["input"].get("prompt") == "[slow down]":
            return _problem(429, "Request was throttled.", {"Retry-After": "3"})
        if body["input"].get("prompt") == "[broke]":
            return _problem(402, "You have insufficient credit to run this model.")
        prediction_id = uuid4().hex[:26]
        fake.created.append({"model": model, **body})
        fake.predictions[prediction_id] = {
            "id": prediction_id,
            "model": model,
            "status": "starting",
            "input": body["input"],
            "output": None,
            "error": None,
            "urls": {
                "get": f"{fake.base_url}/v1/predictions/{prediction_id}",
                "cancel": f"{fake.base_url}/v1/predictions/{prediction_id}/cancel",
            },
        }
        return JSONResponse(fake.predictions[prediction_id], 201)

    @app.post("/v1/models/{owner}/{name}/predictions")
    async def create_for_model(owner: str, name: str, request: Request) -> JSONResponse:
        if owner == "missing":
            return _problem(404, "The requested resource could not be found.")
        return create(await request.json(), f"{owner}/{name}")

    @app.post("/v1/predictions")
    async def create_for_version(request: Request) -> JSONResponse:
        body = await request.json()
        return create(body, body["version"])

    @app.get("/v1/predictions/{prediction_id}")
    async def get_prediction(prediction_id: str) -> JSONResponse:
        found = fake.predictions.get(prediction_id)
        if found is None:
            return _problem(404, "Not found.")
        return JSONResponse(found)

    @app.post("/v1/predictions/{prediction_id}/cancel")
    async def cancel_prediction(prediction_id: str) -> JSONResponse:
        found = fake.predictions.get(prediction_id)
        if found is None:
            return _problem(404, "Not found.")
        if found["status"] in ("starting", "processing"):
            found["status"] = "canceled"
        return JSONResponse(found)

    return app


@pytest.fixture
async def fake_replicate(token: str) -> AsyncIterator[FakeReplicate]:
    fake = FakeReplicate(token=token)
    async with serve(build_fake(fake)) as base_url:
        fake.base_url = base_url
        yield fake


@pytest.fixture
async def live_adapter(fake_replicate: FakeReplicate) -> AsyncIterator[ReplicateAdapter]:
    async with ReplicateAdapter(base_url=fake_replicate.base_url) as adapter:
        yield adapter


async def test_live_prediction_lifecycle(
    live_adapter: ReplicateAdapter, fake_replicate: FakeReplicate, credentials: Credentials
) -> None:
    request = submit_request(
        credentials,
        operation_type="image_to_image",
        params={"prompt": "make it blue"},
        inputs=[InputRef(role="image", url="https://cdn.example.com/a.png")],
    )

    result = await live_adapter.submit(request)
    job = ref(credentials, result.provider_job_id)
    queued = await live_adapter.status(job)
    fake_replicate.predictions[result.provider_job_id]["status"] = "processing"
    running = await live_adapter.status(job)
    fake_replicate.predictions[result.provider_job_id].update(
        status="succeeded", output=["https://replicate.delivery/x/out.webp"]
    )
    done = await live_adapter.status(job)

    assert fake_replicate.created == [
        {
            "model": "black-forest-labs/flux-kontext-pro",
            "input": {"prompt": "make it blue", "input_image": "https://cdn.example.com/a.png"},
        }
    ]
    assert (queued.state, running.state, done.state) == (
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    )
    assert done.asset is not None
    assert str(done.asset.url) == "https://replicate.delivery/x/out.webp"
    assert done.asset.media_type == "image/webp"


async def test_live_cancel_and_versions(
    live_adapter: ReplicateAdapter, fake_replicate: FakeReplicate, credentials: Credentials
) -> None:
    result = await live_adapter.submit(
        submit_request(credentials, params={"prompt": "x", "model": f"acme/vid:{VERSION}"})
    )
    job = ref(credentials, result.provider_job_id)

    await live_adapter.cancel(job)

    assert fake_replicate.created[0]["version"] == VERSION
    assert (await live_adapter.status(job)).state is JobState.CANCELLED


async def test_live_refusals(
    live_adapter: ReplicateAdapter, fake_replicate: FakeReplicate, credentials: Credentials
) -> None:
    with pytest.raises(AuthFailed):
        await live_adapter.submit(submit_request(Credentials(api_key="r8_wrong")))
    with pytest.raises(RateLimited) as limited:
        await live_adapter.submit(submit_request(credentials, params={"prompt": "[slow down]"}))
    assert limited.value.retry_after_s == 3.0
    with pytest.raises(QuotaExhausted, match="insufficient credit"):
        await live_adapter.submit(submit_request(credentials, params={"prompt": "[broke]"}))
    with pytest.raises(InvalidRequest, match="404"):
        await live_adapter.submit(
            submit_request(credentials, params={"prompt": "x", "model": "missing/model"})
        )
    with pytest.raises(JobNotFound):
        await live_adapter.status(ref(credentials, "nope"))
    with pytest.raises(JobNotFound):
        await live_adapter.cancel(ref(credentials, "nope"))
    assert fake_replicate.created == []
