"""What each adapter reports a job cost, where its provider's API says it (MockTransport):
the sim's `credits`, Pixverse's `credit` (generate answer) or `credits`, Replicate's
`metrics.predict_time`; nothing (None) where the answer says nothing or nonsense."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest

from genbus.providers.credentials import Credentials
from genbus.providers.pixverse import PixverseAdapter
from genbus.providers.protocol import JobState, ProviderJobRef, SubmitRequest
from genbus.providers.replicate import ReplicateAdapter
from genbus.providers.sim import SimAdapter

CREDENTIALS = Credentials(api_key="secret-key-0123456789")
REF = ProviderJobRef(provider_job_id="301", credentials=CREDENTIALS)


def _answering(body: dict[str, Any], status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda _: httpx.Response(status, json=body))


@pytest.mark.parametrize(("credits", "cost"), [(3, 3.0), (0, 0.0), (None, None), (-1, None)])
async def test_the_sim_reports_the_credits_its_job_used(credits: Any, cost: float | None) -> None:
    body = {
        "id": "301",
        "status": "succeeded",
        "progress": 1.0,
        "output": {"url": "/v1/files/301", "media_type": "video/mp4"},
        "credits": credits,
    }
    adapter = SimAdapter(base_url="http://sim.test", transport=_answering(body))
    try:
        status = await adapter.status(REF)
    finally:
        await adapter.aclose()
    assert (status.state, status.cost) == (JobState.SUCCEEDED, cost)


@pytest.mark.parametrize(
    ("metrics", "state", "cost"),
    [
        ({"predict_time": 12.5}, "succeeded", 12.5),
        ({"predict_time": 4.0}, "failed", 4.0),
        ({}, "succeeded", None),
        ({"predict_time": "12"}, "succeeded", None),
        ({"predict_time": 3.0}, "processing", None),  # not billed until it ends
    ],
)
async def test_replicate_reports_the_predict_time_of_an_ended_prediction(
    metrics: dict[str, Any], state: str, cost: float | None
) -> None:
    body = {
        "id": "p1",
        "status": state,
        "output": "https://replicate.delivery/out.mp4",
        "error": "boom" if state == "failed" else None,
        "metrics": metrics,
    }
    adapter = ReplicateAdapter(base_url="http://replicate.test", transport=_answering(body))
    try:
        status = await adapter.status(REF)
    finally:
        await adapter.aclose()
    assert status.cost == cost


async def test_pixverse_reports_the_credit_of_its_generate_answer_and_of_a_video() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"ErrCode": 0, "ErrMsg": "ok", "Resp": resp_created})
        return httpx.Response(200, json={"ErrCode": 0, "ErrMsg": "ok", "Resp": resp_video})

    resp_created: dict[str, Any] = {"video_id": 301, "credit": 45}
    resp_video: dict[str, Any] = {
        "id": 301,
        "status": 1,
        "url": "https://media.pixverse.ai/301.mp4",
        "outputWidth": 1280,
        "outputHeight": 720,
    }
    adapter = PixverseAdapter(
        base_url="http://pixverse.test", transport=httpx.MockTransport(handler)
    )
    generation_id = uuid4()
    request = SubmitRequest(
        generation_id=generation_id,
        operation_type="text_to_video",
        params={"prompt": "a cat", "quality": "720p", "duration": 5},
        idempotency_key=f"genbus-{generation_id}-1",
        credentials=CREDENTIALS,
    )
    try:
        assert (await adapter.submit(request)).cost == 45
        assert (await adapter.status(REF)).cost is None  # the video answer says nothing
        resp_video["credits"] = 45
        assert (await adapter.status(REF)).cost == 45
        resp_created.pop("credit")
        assert (await adapter.submit(request)).cost is None
    finally:
        await adapter.aclose()


async def test_pixverse_balance_is_monthly_plus_purchased_credits() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        resp = {"account_id": 1, "credit_monthly": 1069, "credit_package": 30}
        return httpx.Response(200, json={"ErrCode": 0, "ErrMsg": "success", "Resp": resp})

    adapter = PixverseAdapter(
        base_url="http://pixverse.test", transport=httpx.MockTransport(handler)
    )
    try:
        assert await adapter.balance(CREDENTIALS) == 1099
    finally:
        await adapter.aclose()
    (sent,) = seen
    assert (sent.method, sent.url.path) == ("GET", "/openapi/v2/account/balance")
    assert sent.headers["API-KEY"] == "secret-key-0123456789"
    assert sent.headers["Ai-trace-id"]


async def test_replicate_has_no_balance() -> None:
    adapter = ReplicateAdapter(base_url="http://replicate.test", transport=_answering({}))
    try:
        assert await adapter.balance(CREDENTIALS) is None
    finally:
        await adapter.aclose()
