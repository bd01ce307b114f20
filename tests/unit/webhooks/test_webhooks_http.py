"""The management API on fakes: identity asked of the api (and cached), problem+json errors,
the secret shown once, per-user scoping."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from genbus.webhooks.adapters.identity import ApiIdentity
from genbus.webhooks.domain.addresses import AddressPolicy
from genbus.webhooks.entrypoints.http import HttpDeps, management_app
from genbus.webhooks.openapi import SPEC_PATH
from genbus.webhooks.service_layer.endpoints import Endpoints
from tests.unit.webhooks.fakes import FakeStore, PlainCipher
from tests.unit.webhooks.service_layer.test_webhooks_service import _public

KEYS = {"Bearer gbk_alice": "alice", "Bearer gbk_bob": "bob"}
ENDPOINTS = "/api/v1/webhooks/endpoints"


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[str | None] = []
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/me"
        authorization = request.headers.get("authorization")
        self.calls.append(authorization)
        if self.down:
            raise httpx.ConnectError("refused")
        if authorization == "Bearer gbk_busy":
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"code": "rate_limited"})
        user = KEYS.get(authorization or "")
        if user is None:
            return httpx.Response(401, json={"code": "unauthorized"})
        return httpx.Response(200, json={"user_id": user, "key_prefix": "gbk_x", "admin": False})


@pytest.fixture
def fake_api() -> FakeApi:
    return FakeApi()


@pytest.fixture
async def client(fake_api: FakeApi) -> AsyncIterator[httpx.AsyncClient]:
    store = FakeStore()
    identity = ApiIdentity(
        "http://api.test", cache_s=60, transport=httpx.MockTransport(fake_api.handle)
    )
    endpoints = Endpoints(store, PlainCipher(), AddressPolicy(), resolver=_public)
    app = management_app(HttpDeps(endpoints, store, identity))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as c:
        yield c


def _as(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer gbk_{user}"}


async def test_an_endpoint_is_created_with_its_secret_once_and_managed(
    client: httpx.AsyncClient, fake_api: FakeApi
) -> None:
    created = await client.post(
        ENDPOINTS,
        json={"url": "https://hooks.example/a", "events": ["completed"]},
        headers=_as("alice"),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert (body["events"], body["enabled"]) == (["completed"], True)
    one = await client.get(f"{ENDPOINTS}/{body['id']}", headers=_as("alice"))
    assert "secret" not in one.json()
    listed = await client.get(ENDPOINTS, headers=_as("alice"))
    assert [e["id"] for e in listed.json()["items"]] == [body["id"]]
    patched = await client.patch(
        f"{ENDPOINTS}/{body['id']}", json={"enabled": False}, headers=_as("alice")
    )
    assert (patched.json()["enabled"], patched.json()["disabled_reason"]) == (
        False,
        "disabled by the caller",
    )
    enabled = await client.post(f"{ENDPOINTS}/{body['id']}/enable", headers=_as("alice"))
    assert enabled.json()["enabled"] is True
    # Bob sees none of it.
    assert (await client.get(f"{ENDPOINTS}/{body['id']}", headers=_as("bob"))).status_code == 404
    assert (await client.get(ENDPOINTS, headers=_as("bob"))).json()["items"] == []
    deleted = await client.delete(f"{ENDPOINTS}/{body['id']}", headers=_as("alice"))
    assert deleted.status_code == 204
    assert (await client.get(f"{ENDPOINTS}/{body['id']}", headers=_as("alice"))).status_code == 404
    # The api was asked once per key: answers are cached by the key's digest.
    assert sorted(set(fake_api.calls)) == ["Bearer gbk_alice", "Bearer gbk_bob"]
    assert len(fake_api.calls) == 2


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"url": "ftp://x.example/"}, "url", "invalid_url"),
        ({"url": "http://127.0.0.1/"}, "url", "url_not_allowed"),
        ({"url": "https://x.example/", "events": ["exploded"]}, "events[0]", "invalid_choice"),
        ({"url": "https://x.example/", "events": []}, "events", "out_of_range"),
        ({"url": "https://x.example/", "secret": "mine"}, "secret", "unknown_field"),
        ({}, "url", "required"),
    ],
)
async def test_bad_registrations_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str, code: str
) -> None:
    response = await client.post(ENDPOINTS, json=body, headers=_as("alice"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]


async def test_malformed_json_and_unknown_ids_are_problems(client: httpx.AsyncClient) -> None:
    malformed = await client.post(
        ENDPOINTS, content=b"{nope", headers={**_as("alice"), "content-type": "application/json"}
    )
    assert (malformed.status_code, malformed.json()["code"]) == (422, "malformed_json")
    for path in (f"{ENDPOINTS}/not-a-uuid", f"{ENDPOINTS}/7b0a1c5e-3f62-4c8e-9d7a-0e1f2a3b4c5d"):
        missing = await client.get(path, headers=_as("alice"))
        assert (missing.status_code, missing.json()["code"]) == (404, "endpoint_not_found")


async def test_no_valid_key_is_401_a_limited_one_429_and_an_unreachable_api_503(
    client: httpx.AsyncClient, fake_api: FakeApi
) -> None:
    for headers in ({}, _as("mallory")):
        refused = await client.get(ENDPOINTS, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
        assert refused.headers["www-authenticate"].startswith("Bearer")
    limited = await client.get(ENDPOINTS, headers=_as("busy"))
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert limited.headers["retry-after"] == "7"
    fake_api.down = True
    unavailable = await client.get(ENDPOINTS, headers=_as("bob"))
    assert (unavailable.status_code, unavailable.json()["code"]) == (503, "service_unavailable")
    assert unavailable.headers["retry-after"] == "5"


async def test_the_key_is_cached_by_its_digest_never_kept_in_clear(fake_api: FakeApi) -> None:
    identity = ApiIdentity("http://api.test", transport=httpx.MockTransport(fake_api.handle))
    assert (await identity.caller("Bearer gbk_alice")).user_id == "alice"
    cache = identity._cache
    assert list(cache) == [hashlib.sha256(b"Bearer gbk_alice").hexdigest()]
    await identity.aclose()


async def test_the_openapi_document_lists_the_routes_and_is_committed(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    # `make openapi` (python -m genbus.webhooks.openapi --write) refreshes the committed copy.
    assert spec == json.loads(SPEC_PATH.read_text())
    for path in spec["paths"].values():
        for operation in path.values():
            assert operation["security"] == [{"ApiKey": []}]
            problem = operation["responses"]["401"]["content"]
            assert list(problem) == ["application/problem+json"]
    assert set(spec["paths"]) == {
        ENDPOINTS,
        f"{ENDPOINTS}/{{endpoint_id}}",
        f"{ENDPOINTS}/{{endpoint_id}}/enable",
        f"{ENDPOINTS}/{{endpoint_id}}/disable",
        f"{ENDPOINTS}/{{endpoint_id}}/deliveries",
        f"{ENDPOINTS}/{{endpoint_id}}/deliveries/{{delivery_id}}/attempts",
        f"{ENDPOINTS}/{{endpoint_id}}/deliveries/{{delivery_id}}/replay",
    }
