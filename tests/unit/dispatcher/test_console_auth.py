"""The console's door: sign-in with the admin token, the session cookie's flags, CSRF on every
POST, and account changes through the audited path. No database (the fake store)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from genbus.dispatcher.adapters.console_reads import ConsoleReads
from genbus.dispatcher.entrypoints.admin_app import admin_app
from genbus.dispatcher.entrypoints.console import console_routes
from genbus.dispatcher.service_layer.base_urls import PERMISSIVE
from genbus.dispatcher.service_layer.dead_letters import DeadLetters

from .fakes import ACCOUNT, World, make_world

TOKEN = "console-token-" + "x" * 32


def _app(world: World, *, development: bool) -> Any:
    routes = console_routes(
        token=TOKEN,
        name="ops",
        development=development,
        uow=world.store.uow,
        reads=cast(ConsoleReads, None),
        dead_letters=DeadLetters(js=lambda: cast(Any, None), uow=world.store.uow),
        js=lambda: cast(Any, None),
        cipher=world.cipher,
        policy=PERMISSIVE,
        on_change=lambda: None,
        stop=asyncio.Event(),
    )
    return admin_app([], console=routes)


@pytest.fixture
async def world_and_browser() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    world = make_world()
    transport = httpx.ASGITransport(app=_app(world, development=True), client=("10.0.0.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as browser:
        yield world, browser


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def _sign_in(browser: httpx.AsyncClient) -> str:
    csrf = _csrf((await browser.get("/console/login")).text)
    response = await browser.post("/console/login", data={"csrf": csrf, "token": TOKEN})
    assert response.status_code == 303
    return _csrf((await browser.get("/console/accounts")).text)


async def test_pages_need_a_sign_in_and_a_wrong_token_is_refused(
    world_and_browser: tuple[World, httpx.AsyncClient],
) -> None:
    _, browser = world_and_browser
    for path in ("/console/", "/console/accounts", "/console/generations"):
        response = await browser.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/console/login")
    stream = await browser.get("/console/stream/overview", headers={"accept": "text/event-stream"})
    assert stream.status_code == 401
    csrf = _csrf((await browser.get("/console/login")).text)
    wrong = await browser.post("/console/login", data={"csrf": csrf, "token": TOKEN + "x"})
    assert wrong.status_code == 401
    assert "not the admin token" in wrong.text
    assert (await browser.get("/console/accounts")).status_code == 303


async def test_a_post_without_the_sessions_csrf_token_is_refused(
    world_and_browser: tuple[World, httpx.AsyncClient],
) -> None:
    world, browser = world_and_browser
    # Even the sign-in form needs the token of the session that showed it.
    assert (await browser.post("/console/login", data={"token": TOKEN})).status_code == 403
    await _sign_in(browser)
    path = f"/console/accounts/{ACCOUNT}/disable"
    assert (await browser.post(path, data={"reason": "x"})).status_code == 403
    forged = await browser.post(path, data={"reason": "x", "csrf": "forged"})
    assert forged.status_code == 403
    assert world.store.accounts[ACCOUNT].status == "active"


async def test_disable_and_caps_from_the_console_are_audited(
    world_and_browser: tuple[World, httpx.AsyncClient],
) -> None:
    world, browser = world_and_browser
    csrf = await _sign_in(browser)
    page = await browser.get("/console/accounts")
    assert f'data-account="{ACCOUNT}"' in page.text
    disabled = await browser.post(
        f"/console/accounts/{ACCOUNT}/disable", data={"csrf": csrf, "reason": "maintenance"}
    )
    assert (disabled.status_code, disabled.headers["location"]) == (303, "/console/accounts")
    assert world.store.accounts[ACCOUNT].status == "disabled"
    shown = await browser.get("/console/accounts")
    assert f"{ACCOUNT}: disable done" in shown.text
    assert "maintenance" in shown.text
    [entry] = world.store.audit
    assert (entry.action, entry.actor) == ("account.disable", "ops@10.0.0.9 (console)")


async def test_the_session_cookie_is_httponly_strict_and_secure_outside_development() -> None:
    world = make_world()
    transport = httpx.ASGITransport(app=_app(world, development=False))
    async with httpx.AsyncClient(transport=transport, base_url="https://admin") as browser:
        login = await browser.get("/console/login")
        cookie = login.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=strict", "secure", "path=/console"):
        assert flag in cookie
    assert TOKEN not in login.text


async def test_caps_from_the_console_change_the_account_and_a_bad_value_is_shown(
    world_and_browser: tuple[World, httpx.AsyncClient],
) -> None:
    world, browser = world_and_browser
    csrf = await _sign_in(browser)
    path = f"/console/accounts/{ACCOUNT}/caps"
    done = await browser.post(path, data={"csrf": csrf, "max_concurrent": "7", "daily_cap": "90"})
    assert done.status_code == 303
    row = world.store.accounts[ACCOUNT]
    assert (row.max_concurrent, row.daily_cap) == (7, 90)
    [entry] = world.store.audit
    assert entry.action == "account.update"
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["max_concurrent"], entry.after["max_concurrent"]) == (1, 7)

    refused = await browser.post(path, data={"csrf": csrf, "max_concurrent": "0"})
    assert refused.status_code == 303
    shown = await browser.get("/console/accounts")
    assert "invalid_account" in shown.text
    assert world.store.accounts[ACCOUNT].max_concurrent == 7
