"""Bad input never creates anything and never reaches a 500, against the real database."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from api_harness import Api

pytestmark = pytest.mark.integration

VALID: dict[str, Any] = {
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "test video", "quality": "720p"},
}

# (body or raw bytes, expected status, expected top-level code, field → field code)
CASES: list[tuple[Any, int, str, dict[str, str]]] = [
    (b'{"operation_type": ', 422, "malformed_json", {"body": "malformed_json"}),
    ({**VALID, "extra": 1}, 422, "validation_error", {"extra": "unknown_field"}),
    (
        {**VALID, "provider_id": "nope"},
        422,
        "unsupported_provider",
        {"provider_id": "unsupported_provider"},
    ),
    (
        {**VALID, "operation_type": "text_to_song"},
        422,
        "validation_error",
        {"operation_type": "invalid_choice"},
    ),
    (
        {**VALID, "params": {"prompt": ""}},
        422,
        "validation_error",
        {"params.prompt": "out_of_range"},
    ),
    (
        {**VALID, "params": {"prompt": "p", "fps": 1}},
        422,
        "validation_error",
        {"params.fps": "unknown_field"},
    ),
    (
        {**VALID, "params": {"prompt": "p", "duration": 61}},
        422,
        "validation_error",
        {"params.duration": "out_of_range"},
    ),
    (
        {**VALID, "params": {"prompt": "p", "quality": "8k"}},
        422,
        "validation_error",
        {"params.quality": "invalid_choice"},
    ),
    (
        {**VALID, "params": {"prompt": "p", "aspect_ratio": "2:1"}},
        422,
        "validation_error",
        {"params.aspect_ratio": "invalid_choice"},
    ),
    (
        {**VALID, "params": {"prompt": "p", "seed": -1}},
        422,
        "validation_error",
        {"params.seed": "out_of_range"},
    ),
    (
        {**VALID, "params": {"prompt": "a\u0000b"}},
        422,
        "validation_error",
        {"params.prompt": "invalid_character"},
    ),
    ({**VALID, "priority": 11}, 422, "validation_error", {"priority": "out_of_range"}),
    (
        {**VALID, "deadline": "2001-01-01T00:00:00Z"},
        422,
        "validation_error",
        {"deadline": "in_past"},
    ),
    (
        {**VALID, "metadata": {"x": "\u0000"}},
        422,
        "validation_error",
        {"metadata.x": "invalid_character"},
    ),
    ({**VALID, "name": "a\u0000"}, 422, "validation_error", {"name": "invalid_character"}),
    (
        {"operation_type": "image_to_video", "provider_id": "sim"},
        422,
        "validation_error",
        {"inputs": "required_input"},
    ),
    (
        {
            "operation_type": "video_extend",
            "provider_id": "sim",
            "inputs": [{"role": "image", "url": "https://x.io/a.png"}],
        },
        422,
        "validation_error",
        {"inputs": "required_input"},
    ),
    (
        {
            "operation_type": "image_to_video",
            "provider_id": "sim",
            "inputs": [{"role": "image", "generation_id": "00000000-0000-0000-0000-000000000001"}],
        },
        422,
        "validation_error",
        {"inputs[0].generation_id": "generation_not_found"},
    ),
    ({**VALID, "params": {"prompt": "x" * 70_000}}, 413, "request_too_large", {}),
]


@pytest.mark.parametrize(("body", "status", "code", "fields"), CASES)
async def test_bad_input_is_refused_and_leaves_nothing(
    api: Api, body: Any, status: int, code: str, fields: dict[str, str]
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await api.client.post(
        "/api/v1/generations", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    if fields:
        assert {e["field"]: e["code"] for e in problem["errors"]} == fields
    assert await api.count("generations") == 0
    assert await api.count("outbox") == 0


_JUNK: list[Any] = [
    None,
    True,
    -1,
    0,
    2**70,
    1.5,
    "",
    "x" * 300,
    "\u0000",
    "\ud800",
    [],
    [1, [2]],
    {},
    {"a": {"b": None}},
    "2030-01-01T00:00:00Z",
    "text_to_video",
    "sim",
    "https://example.com/a.png",
]
_KEYS = [
    "operation_type",
    "provider_id",
    "params",
    "inputs",
    "priority",
    "scheduled_at",
    "deadline",
    "name",
    "metadata",
    "bogus",
]
_PARAM_KEYS = [
    "prompt",
    "negative_prompt",
    "duration",
    "quality",
    "aspect_ratio",
    "seed",
    "model",
    "provider_options",
    "image_url",
    "bogus",
]


def _mutate(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(VALID))
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            body[rng.choice(_KEYS)] = rng.choice(_JUNK)
        elif isinstance(body.get("params"), dict):
            body["params"][rng.choice(_PARAM_KEYS)] = rng.choice(_JUNK)
    return body


async def test_random_mutations_never_cause_a_server_error(api: Api) -> None:
    rng = random.Random(20250101)
    created = refused = 0
    for _ in range(300):
        body = _mutate(rng)
        # json.dumps escapes the lone surrogate (\ud800), as a client would have to.
        content = json.dumps(body).encode()
        response = await api.client.post(
            "/api/v1/generations", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code in (201, 422), (body, response.text)
        if response.status_code == 201:
            created += 1
        else:
            refused += 1
            assert response.json()["errors"], response.text
    assert created > 0
    assert refused > 100
    assert created == await api.count("generations") == await api.count("outbox")
