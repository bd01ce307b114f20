"""The HTTP edge without a database: every refusal is problem+json naming the field, never 500.

No request here reaches the database (the app has none): validation refuses it first, and
ASGITransport re-raises any unhandled exception, so a 500 path would fail the test.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app

VALID: dict[str, Any] = {
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "test video", "quality": "720p"},
}
MAX_BODY = 64 * 1024


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        database_url="postgresql://nobody@127.0.0.1:9/nowhere",
        nats_url="nats://127.0.0.1:9",
        # Anonymous requests need no database to authenticate.
        allow_anonymous=True,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
        yield c


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:genbus:problem:{code}"
    assert body["title"]
    assert body["detail"]
    return body


def _fields(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["code"] for e in body["errors"]}


async def _post_raw(
    client: httpx.AsyncClient, content: bytes, path: str = "/api/v1/generations"
) -> httpx.Response:
    return await client.post(path, content=content, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "content",
    [
        b"{bad",
        b'{"operation_type": "text_to_video",}',
        b"\xff\xfe\x00{",  # not UTF-8
        b"[" * 50_000,  # nests deeper than the JSON parser recurses
        b'{"params": {"seed": ' + b"1" * 5000 + b"}}",  # an integer too long to parse
    ],
    ids=["syntax", "trailing-comma", "bad-utf8", "deep", "long-int"],
)
async def test_malformed_json_is_422_malformed_json(
    client: httpx.AsyncClient, content: bytes
) -> None:
    body = _problem(await _post_raw(client, content), 422, "malformed_json")
    assert _fields(body) == {"body": "malformed_json"}


@pytest.mark.parametrize("path", ["/api/v1/generations", "/api/v1/jobs"])
async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, path: str) -> None:
    big = {**VALID, "params": {"prompt": "x" * MAX_BODY}}
    _problem(await client.post(path, json=big), 413, "request_too_large")


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"params": {"prompt": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    response = await client.post(
        "/api/v1/generations", content=chunks(), headers={"content-type": "application/json"}
    )
    _problem(response, 413, "request_too_large")


async def test_a_body_just_under_the_limit_is_read(client: httpx.AsyncClient) -> None:
    body = json.dumps({**VALID, "params": {"prompt": "x" * (MAX_BODY - 200)}}).encode()
    assert len(body) < MAX_BODY
    problem = _problem(await _post_raw(client, body), 422, "validation_error")
    assert _fields(problem) == {"params.prompt": "out_of_range"}


async def test_unknown_top_level_fields_are_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/generations", json={**VALID, "color": 1, "fps": 2})
    assert _fields(_problem(response, 422, "validation_error")) == {
        "color": "unknown_field",
        "fps": "unknown_field",
    }


async def test_legacy_route_takes_only_the_legacy_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs", json={**VALID, "deadline": "2030-01-01T00:00:00Z"})
    assert _fields(_problem(response, 422, "validation_error")) == {"deadline": "unknown_field"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"operation_type": "text_to_song"}, {"operation_type": "invalid_choice"}),
        ({"provider_id": 7}, {"provider_id": "invalid_type"}),
        ({"params": []}, {"params": "invalid_type"}),
        ({"params": {"prompt": "p", "fps": 24}}, {"params.fps": "unknown_field"}),
        ({"params": {"quality": "720p"}}, {"params.prompt": "required"}),
        ({"params": {"prompt": "x" * 4001}}, {"params.prompt": "out_of_range"}),
        ({"params": {"prompt": "p\u0000"}}, {"params.prompt": "invalid_character"}),
        ({"priority": 11}, {"priority": "out_of_range"}),
        ({"priority": True}, {"priority": "invalid_type"}),
        ({"priority": "5"}, {"priority": "invalid_type"}),
        ({"deadline": "2000-01-01T00:00:00Z"}, {"deadline": "in_past"}),
        ({"deadline": "2999-01-01T00:00:00"}, {"deadline": "timezone_required"}),
        ({"deadline": "soon"}, {"deadline": "invalid_format"}),
        ({"scheduled_at": "9999-12-31T23:59:59-05:00"}, {"scheduled_at": "out_of_range"}),
        ({"metadata": {"k": "v" * 5000}}, {"metadata": "too_large"}),
        ({"name": "n" * 201}, {"name": "out_of_range"}),
        ({"inputs": [{"role": "image"}]}, {"inputs[0]": "invalid"}),
        (
            {"inputs": [{"role": "Image!", "url": "https://x.io/a"}]},
            {"inputs[0].role": "invalid_format"},
        ),
        ({"inputs": [{"role": "image", "url": "ftp://x.io/a"}]}, {"inputs[0].url": "invalid_url"}),
        (
            {"inputs": [{"role": "image", "generation_id": "nope"}]},
            {"inputs[0].generation_id": "invalid_format"},
        ),
    ],
)
async def test_bad_fields_are_named(
    client: httpx.AsyncClient, change: dict[str, Any], expected: dict[str, str]
) -> None:
    response = await client.post("/api/v1/generations", json={**VALID, **change})
    assert _fields(_problem(response, 422, "validation_error")) == expected


async def test_non_finite_numbers_in_json_are_refused(client: httpx.AsyncClient) -> None:
    raw = json.dumps({**VALID, "metadata": {"x": "NAN"}}).replace('"NAN"', "NaN").encode()
    body = _problem(await _post_raw(client, raw), 422, "validation_error")
    assert _fields(body) == {"metadata.x": "invalid_number"}


@pytest.mark.parametrize(
    ("provider_id", "code", "field"),
    [
        ("nope", "unsupported_provider", "provider_id"),
        ("SIM", "unsupported_provider", "provider_id"),
    ],
)
async def test_unknown_provider(
    client: httpx.AsyncClient, provider_id: str, code: str, field: str
) -> None:
    response = await client.post("/api/v1/generations", json={**VALID, "provider_id": provider_id})
    assert _fields(_problem(response, 422, code)) == {field: code}


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/json"),
        (json.dumps(VALID).encode(), "text/plain"),
        (b"[]", "application/json"),
    ],
)
async def test_missing_or_non_object_body(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/api/v1/generations", content=content, headers={"content-type": content_type}
    )
    assert "body" in _fields(_problem(response, 422, "validation_error"))


@pytest.mark.parametrize(
    "path",
    ["/api/v1/generations/not-a-uuid", "/api/v1/jobs/123", "/api/v1/generations/x/cancel"],
)
async def test_a_malformed_id_is_not_found(client: httpx.AsyncClient, path: str) -> None:
    method = "POST" if path.endswith("/cancel") else "GET"
    _problem(await client.request(method, path), 404, "generation_not_found")


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    _problem(await client.get("/api/v1/nothing"), 404, "not_found")
    response = await client.delete("/api/v1/generations")
    _problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_healthz_answers_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_has_stable_operation_ids(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "create_generation",
        "get_generation",
        "cancel_generation",
        "create_job",
        "get_job",
    } <= ids


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/generations", None),
        ("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000001", None),
        ("POST", "/api/v1/generations", VALID),
        ("POST", "/api/v1/jobs", VALID),
        ("DELETE", "/api/v1/generations/00000000-0000-0000-0000-000000000001", None),
        ("GET", "/api/v1/generations/00000000-0000-0000-0000-000000000001/events", None),
        ("GET", "/api/v1/events", None),
    ],
)
async def test_an_unreachable_database_is_503_with_retry_after(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body)
    problem = _problem(response, 503, "service_unavailable")
    assert problem["detail"]
    assert int(response.headers["retry-after"]) >= 1


async def test_authenticating_a_key_without_a_database_is_503(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/generations", headers={"Authorization": "Bearer gbk_" + "a" * 43}
    )
    _problem(response, 503, "service_unavailable")


async def test_a_malformed_key_is_refused_without_a_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/generations", headers={"Authorization": "Bearer nope"})
    _problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
