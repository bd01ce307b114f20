"""The admin API's refusals, without a database: the problem+json shape of every genbus HTTP
surface (`genbus.runtime.problems`), and the `genbus` CLI reading it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from genbus.cli.client import AdminClient, AdminError
from genbus.dispatcher.entrypoints.admin_http import admin_routes
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork
from genbus.providers import CredentialCipher
from genbus.runtime.http_server import service_app
from genbus.runtime.problems import FieldError, validation_problem

TOKEN = "test-admin-token"
SHAPE = {"type", "title", "status", "detail", "code"}


def _no_database() -> AbstractUnitOfWork:
    raise RuntimeError("the database is down")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    cipher = CredentialCipher([CredentialCipher.generate_key()])
    app = service_app({}, routes=admin_routes(_no_database, cipher, TOKEN))
    # ASGITransport re-raises an unhandled exception: a 500 below is one the admin API answered.
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://dispatcher", headers=headers
    ) as c:
        yield c


def _problem(response: httpx.Response, status: int, code: str, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) - {"errors"} == SHAPE
    assert (body["type"], body["title"], body["status"], body["code"]) == (
        f"urn:genbus:problem:{code}",
        title,
        status,
        code,
    )
    assert body["detail"]
    return body


async def test_a_missing_token_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/accounts", headers={"Authorization": ""})
    body = _problem(response, 401, "unauthorized", "Unauthorized")
    assert "errors" not in body
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_body_off_the_schema_names_each_field(client: httpx.AsyncClient) -> None:
    secret = "sk-live-never-echoed"
    response = await client.post(
        "/admin/accounts",
        json={"provider_id": "sim", "label": "a", "credentials": {}, "fingerprint": secret},
    )
    body = _problem(response, 422, "validation_error", "Unprocessable Entity")
    assert all(set(error) == {"field", "code", "message"} for error in body["errors"])
    codes = {error["field"]: error["code"] for error in body["errors"]}
    assert codes["fingerprint"] == "unknown_field"
    assert codes["max_concurrent"] == "required"
    assert secret not in response.text


async def test_a_nested_field_is_named_as_sent(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/accounts/a/disable", json={"reason": ""})
    body = _problem(response, 422, "validation_error", "Unprocessable Entity")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("reason", "out_of_range")]


async def test_a_body_that_is_not_json_is_malformed(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/accounts", content=b'{"credentials": {"api_key": "sk')
    body = _problem(response, 422, "malformed_json", "Unprocessable Entity")
    assert body["errors"] == [
        {"field": "body", "code": "malformed_json", "message": "not valid JSON"}
    ]
    assert "sk" not in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "title"),
    [
        ("GET", "/admin/no-such-route", 404, "not_found", "Not Found"),
        ("DELETE", "/admin/status", 405, "method_not_allowed", "Method Not Allowed"),
    ],
)
async def test_an_unknown_route_or_method_is_a_problem(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str, title: str
) -> None:
    _problem(await client.request(method, path), status, code, title)


async def test_an_unexpected_failure_is_a_problem_without_its_message(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/admin/accounts")
    body = _problem(response, 500, "internal_error", "Internal Server Error")
    assert "database is down" not in response.text
    assert "errors" not in body


def test_the_cli_shows_each_field_at_fault() -> None:
    problem = validation_problem(
        [
            FieldError("max_concurrent", "required", "Field required"),
            FieldError("credentials.api_key", "invalid_type", "Input should be a valid string"),
        ]
    )

    def answer(_: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/problem+json"}
        return httpx.Response(problem.status_code, content=problem.body, headers=headers)

    admin = AdminClient("http://dispatcher", TOKEN, transport=httpx.MockTransport(answer))
    with pytest.raises(AdminError) as refused:
        admin.post("/admin/accounts", {})
    assert (refused.value.code, refused.value.status) == ("validation_error", 422)
    assert refused.value.detail == (
        "the request is invalid; see errors; max_concurrent: Field required; "
        "credentials.api_key: Input should be a valid string"
    )
