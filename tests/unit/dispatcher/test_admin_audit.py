"""The admin listener's rules without a database: token length, where credentials may be sent,
a base URL change without credentials, and the audit entry every change leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from genbus.dispatcher.config import MIN_ADMIN_TOKEN_LENGTH, DispatcherSettings
from genbus.dispatcher.entrypoints import cli
from genbus.dispatcher.entrypoints.admin_app import admin_app
from genbus.dispatcher.entrypoints.admin_http import admin_routes
from genbus.dispatcher.service_layer.base_urls import (
    PERMISSIVE,
    STRICT,
    BaseUrlPolicy,
    base_url_problem,
)

from .fakes import ACCOUNT, API_KEY, World, make_world

TOKEN = "t" * MIN_ADMIN_TOKEN_LENGTH


def test_a_short_admin_token_is_refused_and_a_long_or_empty_one_accepted() -> None:
    with pytest.raises(ValidationError, match="shorter than 32 characters"):
        DispatcherSettings(admin_token="x" * (MIN_ADMIN_TOKEN_LENGTH - 1))
    assert DispatcherSettings(admin_token=TOKEN).admin_token.get_secret_value() == TOKEN
    assert DispatcherSettings(admin_token="").admin_token.get_secret_value() == ""


def test_the_dispatcher_command_refuses_a_short_token_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENBUS_DISPATCHER_ADMIN_TOKEN", "too-short")
    monkeypatch.setenv("GENBUS_CONNECTION_FILE", "")
    with pytest.raises(SystemExit) as exited:
        cli.main(["accounts", "list"])
    message = str(exited.value.code)
    assert "\n" not in message
    assert "admin_token" in message
    assert "shorter than 32" in message
    assert "too-short" not in message


@pytest.mark.parametrize(
    ("url", "policy", "problem"),
    [
        ("https://app-api.pixverse.ai", STRICT, None),
        ("http://app-api.pixverse.ai", STRICT, "must be https"),
        ("http://app-api.pixverse.ai", BaseUrlPolicy(allow_http=True), None),
        ("https://10.0.0.5", STRICT, "not a public address"),
        ("https://169.254.169.254/latest", STRICT, "not a public address"),
        ("https://[::1]:8443", STRICT, "not a public address"),
        ("https://localhost:9100", STRICT, "is local"),
        ("https://10.0.0.5", BaseUrlPolicy(allow_private=True), None),
        ("http://127.0.0.1:9100", PERMISSIVE, None),
        ("https://8.8.8.8", STRICT, None),
        (None, STRICT, None),
    ],
)
def test_where_an_account_may_send_its_credentials(
    url: str | None, policy: BaseUrlPolicy, problem: str | None
) -> None:
    found = base_url_problem(url, policy)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


@pytest.fixture
async def world_and_client() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    world = make_world()
    app = admin_app(admin_routes(world.store.uow, world.cipher, TOKEN, name="ops-team"))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://dispatcher", headers=headers
    ) as client:
        yield world, client


async def test_disable_and_enable_are_audited_with_who_what_and_before_after(
    world_and_client: tuple[World, httpx.AsyncClient],
) -> None:
    _, client = world_and_client
    disabled = await client.post(f"/admin/accounts/{ACCOUNT}/disable", json={"reason": "abuse"})
    assert disabled.status_code == 200, disabled.text
    assert (await client.post(f"/admin/accounts/{ACCOUNT}/enable")).status_code == 200

    response = await client.get("/admin/audit")
    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [e["action"] for e in entries] == ["account.enable", "account.disable"]
    enable, disable = entries
    assert {e["actor"] for e in entries} == {"ops-team@10.1.2.3"}
    assert {e["target"] for e in entries} == {ACCOUNT}
    assert (disable["before"]["status"], disable["after"]["status"]) == ("active", "disabled")
    assert disable["after"]["status_reason"] == "abuse"
    assert (enable["before"]["status"], enable["after"]["status"]) == ("disabled", "active")
    assert disable["at"] <= enable["at"]
    assert API_KEY not in response.text
    assert "credentials_ciphertext" not in response.text

    # Paging and filtering.
    older = await client.get("/admin/audit", params={"before_id": enable["id"]})
    assert [e["id"] for e in older.json()["entries"]] == [disable["id"]]
    other = await client.get("/admin/audit", params={"target": "acc-none"})
    assert other.json()["entries"] == []
    bad = await client.get("/admin/audit", params={"limit": "0"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_parameter")


async def test_a_refused_change_leaves_no_audit_entry(
    world_and_client: tuple[World, httpx.AsyncClient],
) -> None:
    world, client = world_and_client
    response = await client.post("/admin/accounts/acc-none/disable", json={"reason": "x"})
    assert response.status_code == 404
    assert world.store.audit == []


async def test_changing_base_url_requires_the_credentials_again(
    world_and_client: tuple[World, httpx.AsyncClient],
) -> None:
    world, client = world_and_client
    response = await client.patch(
        f"/admin/accounts/{ACCOUNT}", json={"base_url": "https://elsewhere.example"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "credentials_required"
    assert world.store.accounts[ACCOUNT].base_url == "http://provider.test"
    assert world.store.audit == []


async def test_an_account_base_url_must_be_https_and_public_by_default(
    world_and_client: tuple[World, httpx.AsyncClient],
) -> None:
    _, client = world_and_client
    for url, expected in (
        ("http://api.example", "must be https"),
        ("https://192.168.1.10", "not a public address"),
    ):
        response = await client.post(
            "/admin/accounts",
            json={
                "provider_id": "sim",
                "label": f"bad-{expected[:4]}",
                "max_concurrent": 1,
                "base_url": url,
                "credentials": {"api_key": "k"},
            },
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_account"
        assert expected in response.json()["detail"]


async def test_admin_requests_are_counted_in_the_http_metrics(
    world_and_client: tuple[World, httpx.AsyncClient],
) -> None:
    _, client = world_and_client

    def count() -> float:
        value = REGISTRY.get_sample_value(
            "genbus_http_requests_total",
            # The route template inside the /admin mount, as before the listener moved.
            {"method": "GET", "route": "/audit", "status": "200"},
        )
        return value or 0.0

    before = count()
    assert (await client.get("/admin/audit")).status_code == 200
    assert count() == before + 1
