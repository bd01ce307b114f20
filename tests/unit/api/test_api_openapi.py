"""The OpenAPI document: the served one equals the committed `services/api/openapi.json`, and
it documents every route completely (errors, examples, security)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.http.app import create_app
from genbus.api.openapi import SPEC_PATH, committed_spec

REFRESH = "run `uv run --frozen python -m genbus.api.openapi --write` and commit the result"


@pytest.fixture
async def served() -> dict[str, Any]:
    app = create_app(ApiSettings(database_url="postgresql://nobody@127.0.0.1:9/x"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def test_the_served_spec_is_the_committed_one(served: dict[str, Any]) -> None:
    assert SPEC_PATH.exists(), REFRESH
    assert served == committed_spec(), f"{SPEC_PATH.name} is out of date: {REFRESH}"


def test_every_route_is_served_and_documented(served: dict[str, Any]) -> None:
    operations = {(m, p): o for m, p, o in _operations(served)}
    expected = {
        ("POST", "/api/v1/generations"),
        ("GET", "/api/v1/generations"),
        ("GET", "/api/v1/generations/{generation_id}"),
        ("DELETE", "/api/v1/generations/{generation_id}"),
        ("POST", "/api/v1/generations/{generation_id}/cancel"),
        ("POST", "/api/v1/generations/{generation_id}/retry"),
        ("GET", "/api/v1/generations/{generation_id}/events"),
        ("GET", "/api/v1/generations/{generation_id}/asset"),
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/uploads"),
        ("GET", "/api/v1/uploads"),
        ("GET", "/api/v1/uploads/{upload_id}"),
        ("DELETE", "/api/v1/uploads/{upload_id}"),
        ("POST", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs/{generation_id}"),
        ("DELETE", "/api/v1/jobs/{generation_id}"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/usage"),
        ("GET", "/api/v1/admin/usage"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    }
    assert set(operations) == expected
    for (method, path), operation in operations.items():
        where = f"{method} {path}"
        assert operation.get("operationId"), where
        assert operation.get("description") or operation.get("summary"), where
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), where
        if not path.startswith("/api/"):
            continue
        assert operation["security"] == [{"ApiKey": []}], where
        required = {"401", "422", "429", "503"}
        if "{generation_id}" in path:
            required.add("404")
        if method == "POST" and "requestBody" in operation:
            required |= {"409", "413"}
        assert required <= set(responses), (where, required - set(responses))
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                content = response["content"]
                assert list(content) == ["application/problem+json"], (where, code)
                problem = content["application/problem+json"]
                assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
                assert problem["examples"], (where, code)
                if code in ("429", "503"):
                    assert "Retry-After" in response["headers"], (where, code)


def test_schemas_and_request_bodies_have_examples(served: dict[str, Any]) -> None:
    schemas = served["components"]["schemas"]
    for name in ("GenerationCreate", "JobCreate", "GenerationPublic", "GenerationPage", "Problem"):
        assert schemas[name].get("examples"), name
    assert served["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_priority_is_documented_once_as_higher_first(served: dict[str, Any]) -> None:
    assert "HIGHER IS DISPATCHED FIRST" in served["info"]["description"]
    create = served["components"]["schemas"]["GenerationCreate"]["properties"]["priority"]
    assert (create["minimum"], create["maximum"], create["default"]) == (0, 10, 5)
    assert "HIGHER IS DISPATCHED FIRST" in create["description"]
