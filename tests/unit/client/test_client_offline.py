"""The Python client without a server: what it sends, how it reads errors, when it resends,
and the webhook verification helper."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from genbus.client import (
    AsyncGenbusClient,
    Conflict,
    GenbusClient,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
    WebhookVerificationError,
    verify_webhook,
    webhook_id,
)

GENERATION: dict[str, Any] = {
    "id": "3f2b8c1e-0000-4000-8000-000000000001",
    "user_id": "local",
    "status": "completed",
    "wait_reason": None,
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "x"},
    "canonical_params": {"prompt": "x"},
    "inputs": [],
    "canonical_inputs": [],
    "priority": 5,
    "scheduled_at": None,
    "deadline_at": "2030-01-01T00:00:00Z",
    "name": None,
    "metadata": {},
    "reproducible_hash": "0" * 64,
    "attempt": 1,
    "account_id": "a",
    "provider_job_id": "j",
    "asset": {
        "url": "http://x/y.mp4",
        "media_type": "video/mp4",
        "width": 1,
        "height": 1,
        "duration_s": 1.0,
    },
    "error": None,
    "created_at": "2030-01-01T00:00:00Z",
    "updated_at": "2030-01-01T00:00:00Z",
    "submitted_at": None,
    "completed_at": None,
    "parent_generation_id": None,
    "prompt_version_id": None,
}
BODY = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "x"}}


def _problem(status: int, code: str, **extra: Any) -> httpx.Response:
    body = {
        "type": f"urn:genbus:problem:{code}",
        "title": "t",
        "status": status,
        "detail": "d",
        "code": code,
        **extra,
    }
    headers = {"content-type": "application/problem+json", **extra.pop("headers", {})}
    return httpx.Response(status, content=json.dumps(body), headers=headers)


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> GenbusClient:
    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://api.test")
    return GenbusClient(http_client=http, backoff_s=0.001)


def test_create_sends_an_idempotency_key_and_the_wait_preference() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=GENERATION)

    generation = _client(handler).create(BODY, wait=90)
    assert str(generation.id) == GENERATION["id"]
    assert generation.status.value == "completed"
    (request,) = seen
    assert request.headers["Prefer"] == "wait=60"
    assert len(request.headers["Idempotency-Key"]) == 36
    assert json.loads(request.content) == BODY
    # A wait lengthens the request's timeout by itself.
    assert request.extensions["timeout"]["read"] == 60 + 30


def test_a_lost_answer_is_resent_with_the_same_idempotency_key() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ReadTimeout("lost", request=request)
        if len(keys) == 2:
            return _problem(503, "service_unavailable")
        return httpx.Response(201, json=GENERATION)

    _client(handler).create(BODY, idempotency_key="k-1")
    assert keys == ["k-1", "k-1", "k-1"]


def test_a_cancel_is_not_resent() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return _problem(503, "service_unavailable", headers={"Retry-After": "5"})

    with pytest.raises(ServiceUnavailable) as raised:
        _client(handler).cancel(GENERATION["id"])
    assert count == 1
    assert raised.value.retry_after_s == 5


@pytest.mark.parametrize(
    ("response", "kind", "code"),
    [
        (_problem(404, "generation_not_found"), NotFound, "generation_not_found"),
        (_problem(409, "generation_terminal"), Conflict, "generation_terminal"),
        (_problem(429, "overloaded"), RateLimited, "overloaded"),
        (httpx.Response(404, text="plain"), NotFound, "http_404"),
    ],
)
def test_errors_are_typed_and_carry_the_code(
    response: httpx.Response, kind: type[Exception], code: str
) -> None:
    with pytest.raises(kind) as raised:
        _client(lambda _: response).get(GENERATION["id"])
    assert getattr(raised.value, "code") == code  # noqa: B009


def test_a_422_names_every_field() -> None:
    errors = [{"field": "params.prompt", "code": "required", "message": "m"}]
    with pytest.raises(ValidationFailed) as raised:
        _client(lambda _: _problem(422, "validation_error", errors=errors)).create(BODY)
    assert [(e.field, e.code) for e in raised.value.errors] == [("params.prompt", "required")]


def test_list_sends_every_filter() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [GENERATION], "next_cursor": None})

    moment = datetime(2030, 1, 1, tzinfo=UTC)
    page = _client(handler).list(
        status=["failed", "cancelled"], provider_id="sim", created_after=moment, limit=5
    )
    assert len(page.items) == 1
    params = seen[0].url.params
    assert params.get_list("status") == ["failed", "cancelled"]
    assert params["provider_id"] == "sim"
    assert params["created_after"] == moment.isoformat()
    assert params["limit"] == "5"


async def test_the_async_client_sends_the_same() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=GENERATION)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://api.test")
    async with AsyncGenbusClient(http_client=http) as client:
        generation = await client.get(GENERATION["id"], wait=5)
    assert generation.status.value == "completed"
    assert seen[0].headers["Prefer"] == "wait=5"
    await http.aclose()


SECRET = "whsec_" + base64.b64encode(b"a" * 24).decode()


def _signed(payload: bytes, at: datetime) -> dict[str, str]:
    signature = Webhook(SECRET).sign("msg_1", at, payload.decode())
    return {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(int(at.timestamp())),
        "Webhook-Signature": signature,
    }


def test_a_signed_webhook_verifies() -> None:
    payload = b'{"type": "generation.completed", "data": {"id": "g"}}'
    headers = _signed(payload, datetime.now(UTC))
    assert verify_webhook(SECRET, payload, headers) == json.loads(payload)
    assert webhook_id(headers) == "msg_1"


@pytest.mark.parametrize("case", ["tampered", "old", "unsigned", "other_secret"])
def test_a_bad_webhook_is_refused(case: str) -> None:
    payload = b'{"type": "generation.completed"}'
    at = datetime.now(UTC) - (timedelta(minutes=10) if case == "old" else timedelta())
    headers = _signed(payload, at)
    secret = SECRET
    if case == "tampered":
        payload = payload.replace(b"completed", b"failed")
    elif case == "unsigned":
        del headers["Webhook-Signature"]
    elif case == "other_secret":
        secret = "whsec_" + base64.b64encode(b"b" * 24).decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, payload, headers)


def _sse(*events: tuple[int, dict[str, Any]]) -> httpx.Response:
    text = "".join(f"id: {i}\nevent: generation\ndata: {json.dumps(d)}\n\n" for i, d in events)
    return httpx.Response(
        200, text=": ping\n\n" + text, headers={"content-type": "text/event-stream"}
    )


def test_a_closed_stream_is_resumed_with_last_event_id() -> None:
    seen: list[str | None] = []
    pending = {**GENERATION, "status": "pending", "asset": None}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Last-Event-ID"))
        if len(seen) == 1:
            return _sse((7, pending))  # the server closes before the end
        return _sse((9, GENERATION))

    events = list(_client(handler).events(GENERATION["id"]))
    assert [(e.id, e.generation and e.generation.status.value) for e in events] == [
        (7, "pending"),
        (9, "completed"),
    ]
    assert seen == [None, "7"]


def test_a_stream_of_an_ended_generation_with_nothing_after_is_empty() -> None:
    client = _client(lambda _: httpx.Response(204))
    assert list(client.events(GENERATION["id"], last_event_id=9)) == []
