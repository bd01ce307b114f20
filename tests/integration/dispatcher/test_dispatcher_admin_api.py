"""The admin HTTP API on a real database: account management, status, key rotation, and
secrets that never come back (responses) nor rest in plaintext (database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from dispatcher_harness import Dispatcher
from sqlalchemy import text

from genbus.dispatcher.domain.model import ClaimedJob
from genbus.dispatcher.entrypoints.admin_http import admin_routes
from genbus.providers import CredentialCipher
from genbus.runtime.http_server import service_app

pytestmark = pytest.mark.integration

TOKEN = "test-admin-token"


@dataclass
class Admin:
    client: httpx.AsyncClient
    bodies: list[str]  # every response body seen, for the "no secret" checks

    async def call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        response = await self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        self.bodies.append(response.text)
        return response


def _client(app: object, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://dispatcher", headers=headers)


@pytest.fixture
async def admin(dispatcher: Dispatcher) -> AsyncIterator[Admin]:
    app = service_app({}, routes=admin_routes(dispatcher.deps.uow, dispatcher.cipher, TOKEN))
    async with _client(app, TOKEN) as client:
        yield Admin(client, [])


def secret() -> str:
    return f"sk-live-{uuid.uuid4().hex}"


def new_account(label: str, key: str, **fields: object) -> dict[str, object]:
    return {
        "provider_id": "pixverse",
        "label": label,
        "max_concurrent": 3,
        "credentials": {"api_key": key},
        **fields,
    }


async def test_admin_routes_need_the_token(dispatcher: Dispatcher) -> None:
    app = service_app({}, routes=admin_routes(dispatcher.deps.uow, dispatcher.cipher, TOKEN))
    for token in (None, "wrong-token", TOKEN + "x"):
        async with _client(app, token) as client:
            for method, path in [
                ("GET", "/admin/accounts"),
                ("POST", "/admin/accounts"),
                ("GET", "/admin/status"),
                ("POST", "/admin/credentials/rotate"),
                ("GET", "/admin/no-such-route"),
            ]:
                response = await client.request(method, path)
                assert response.status_code == 401, (token, path)
                assert response.headers["www-authenticate"] == "Bearer"
    async with _client(app, TOKEN) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/admin/accounts")).status_code == 200


async def test_admin_routes_do_not_exist_without_a_configured_token(
    dispatcher: Dispatcher,
) -> None:
    app = service_app({}, routes=admin_routes(dispatcher.deps.uow, dispatcher.cipher, ""))
    async with _client(app, "anything") as client:
        assert (await client.get("/admin/accounts")).status_code == 404
        assert (await client.post("/admin/credentials/rotate")).status_code == 404


async def test_accounts_are_managed_and_their_credentials_never_shown(
    admin: Admin, dispatcher: Dispatcher
) -> None:
    first, second = secret(), secret()

    created = await admin.call("POST", "/admin/accounts", json=new_account("Pix A", first))
    assert created.status_code == 201, created.text
    account = created.json()
    assert created.headers["location"] == f"/admin/accounts/{account['id']}"
    assert account["id"] == "pix-a"
    assert account["credential_names"] == ["api_key"]
    assert account["status"] == "active"
    assert (account["busy"], account["used_today"], account["daily_cap"]) == (0, 0, None)

    duplicate = await admin.call("POST", "/admin/accounts", json=new_account("Pix A", second))
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "account_conflict"

    patched = await admin.call(
        "PATCH",
        "/admin/accounts/pix-a",
        json={
            "max_concurrent": 5,
            "daily_cap": 100,
            "credits": 40,
            "operations": ["text_to_video"],
            "credentials": {"api_key": second, "team_id": "t-1"},
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["credential_names"] == ["api_key", "team_id"]
    assert (patched.json()["max_concurrent"], patched.json()["daily_cap"]) == (5, 100)
    cleared = await admin.call("PATCH", "/admin/accounts/pix-a", json={"daily_cap": None})
    assert cleared.json()["daily_cap"] is None
    not_null = await admin.call("PATCH", "/admin/accounts/pix-a", json={"max_concurrent": None})
    assert not_null.status_code == 422

    disabled = await admin.call(
        "POST", "/admin/accounts/pix-a/disable", json={"reason": "key leaked in a ticket"}
    )
    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["status_reason"] == "key leaked in a ticket"
    no_reason = await admin.call("POST", "/admin/accounts/pix-a/disable", json={})
    assert no_reason.status_code == 422
    enabled = await admin.call("POST", "/admin/accounts/pix-a/enable")
    assert (enabled.json()["status"], enabled.json()["status_reason"]) == ("active", None)

    uow = dispatcher.deps.uow()
    async with uow:
        await uow.accounts.cool_down("pix-a", 60, "rate_limited")
        await uow.commit()
    shown = await admin.call("GET", "/admin/accounts/pix-a")
    assert shown.json()["status"] == "cooling_down"
    listed = await admin.call("GET", "/admin/accounts")
    assert [a["id"] for a in listed.json()["accounts"]] == ["pix-a"]
    missing = await admin.call("GET", "/admin/accounts/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "urn:genbus:problem:account_not_found",
        "title": "Not Found",
        "status": 404,
        "detail": missing.json()["detail"],
        "code": "account_not_found",
    }

    for body in admin.bodies:
        assert first not in body
        assert second not in body
    await assert_no_plaintext(dispatcher, [first, second, "t-1"])


async def test_invalid_bodies_are_refused_without_echoing_a_secret(admin: Admin) -> None:
    key = secret()
    cases = [
        new_account("bad cap", key, max_concurrent=0),
        new_account("bad provider", key, provider_id="nowhere"),
        new_account("bad op", key, operations=["text_to_image"]),
        new_account("bad url", key, base_url="ftp://example.com"),
        {**new_account("bad creds", key), "credentials": {"api_key": 12345}},
        {**new_account("extra", key), "credentials_ciphertext": key},
        {**new_account("empty", key), "credentials": {}},
    ]
    for body in cases:
        response = await admin.call("POST", "/admin/accounts", json=body)
        assert response.status_code == 422, (body["label"], response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == f"urn:genbus:problem:{response.json()['code']}"
    broken = await admin.call(
        "POST", "/admin/accounts", content=b'{"credentials": {"api_key": "' + key.encode()
    )
    assert broken.status_code == 422
    assert broken.json()["code"] == "malformed_json"
    assert all(key not in body for body in admin.bodies)


async def test_status_reports_queues_in_flight_and_accounts(
    admin: Admin, dispatcher: Dispatcher
) -> None:
    a = await dispatcher.add_account("a", "sim-key-1", max_concurrent=2)
    await dispatcher.add_account("b", "sim-key-2", max_concurrent=3)
    await admin.call("POST", "/admin/accounts/b/disable", json={"reason": "maintenance"})
    await dispatcher.queue(5)
    claimed = [await _claim(dispatcher), await _claim(dispatcher)]
    assert {c.account_id for c in claimed} == {a.id}

    status = (await admin.call("GET", "/admin/status")).json()

    [queue] = status["queues"]
    assert (queue["provider_id"], queue["queued"], queue["due"]) == ("sim", 3, 3)
    assert queue["oldest_waiting_s"] >= 0
    in_flight = {row["account_id"]: row for row in status["in_flight"]}
    assert (in_flight["a"]["claimed"], in_flight["a"]["busy"]) == (2, 2)
    assert in_flight["b"]["busy"] == 0
    assert status["accounts"]["by_status"]["disabled"] == 1
    assert status["accounts"]["by_provider"]["sim"] == {
        "accounts": 2,
        "usable": 1,
        "slots": 2,
        "busy": 2,
    }


async def test_rotation_re_encrypts_every_account_with_the_first_key(
    dispatcher: Dispatcher,
) -> None:
    old_key, new_key = CredentialCipher.generate_key(), CredentialCipher.generate_key()
    dispatcher.cipher = CredentialCipher([old_key])
    keys = [secret() for _ in range(3)]
    for index, key in enumerate(keys):
        await dispatcher.add_account(f"acc-{index}", key)
    async with dispatcher.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO dispatcher.provider_accounts (id, provider_id, label, "
                "credentials_ciphertext, max_concurrent, priority, status) "
                "VALUES ('broken', 'sim', 'broken', 'not-a-token', 1, 0, 'active')"
            )
        )
    rotating = CredentialCipher([new_key, old_key])
    app = service_app({}, routes=admin_routes(dispatcher.deps.uow, rotating, TOKEN))

    async with _client(app, TOKEN) as client:
        response = await client.post("/admin/credentials/rotate")

    assert response.status_code == 200
    assert response.json() == {"rotated": 3, "unreadable": ["broken"]}
    only_new = CredentialCipher([new_key])
    async with dispatcher.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, credentials_ciphertext FROM dispatcher.provider_accounts "
                    "WHERE id <> 'broken' ORDER BY id"
                )
            )
        ).all()
    assert sorted(only_new.decrypt(r.credentials_ciphertext).require("api_key") for r in rows) == (
        sorted(keys)
    )
    await assert_no_plaintext(dispatcher, keys)


async def _claim(dispatcher: Dispatcher) -> ClaimedJob:
    uow = dispatcher.deps.uow()
    async with uow:
        claim = await uow.jobs.claim_next("test", 30.0)
        await uow.commit()
    assert claim is not None
    return claim


async def assert_no_plaintext(dispatcher: Dispatcher, secrets: list[str]) -> None:
    """Every column of every account row, as text, holds none of `secrets`."""
    async with dispatcher.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT a::text AS row FROM dispatcher.provider_accounts a"))
        ).all()
    assert rows
    for row in rows:
        for value in secrets:
            assert value not in row.row
