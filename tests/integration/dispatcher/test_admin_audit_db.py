"""The audit log on a real database: every admin change through the API is one row, with who,
what, before and after, and never a credential value; `genbus-dispatcher audit list` reads it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import httpx
import pytest
from dispatcher_harness import Dispatcher
from sqlalchemy import text

from genbus.dispatcher.entrypoints.admin_app import admin_app
from genbus.dispatcher.entrypoints.admin_http import admin_routes
from genbus.dispatcher.service_layer.base_urls import PERMISSIVE

pytestmark = pytest.mark.integration

TOKEN = "integration-admin-token-0123456789abcdef"


async def test_admin_changes_are_audited_without_secrets(dispatcher: Dispatcher) -> None:
    key, new_key = f"sk-{uuid.uuid4().hex}", f"sk-{uuid.uuid4().hex}"
    app = admin_app(
        admin_routes(dispatcher.deps.uow, dispatcher.cipher, TOKEN, policy=PERMISSIVE, name="sre")
    )
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 4000))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://dispatcher",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        created = await client.post(
            "/admin/accounts",
            json={
                "provider_id": "sim",
                "label": "audited",
                "max_concurrent": 2,
                "base_url": dispatcher.sim.url,
                "credentials": {"api_key": key},
            },
        )
        assert created.status_code == 201, created.text
        account_id = created.json()["id"]
        refused = await client.patch(
            f"/admin/accounts/{account_id}", json={"base_url": "https://moved.example"}
        )
        assert refused.json()["code"] == "credentials_required"
        moved = await client.patch(
            f"/admin/accounts/{account_id}",
            json={"base_url": "https://moved.example", "credentials": {"api_key": new_key}},
        )
        assert moved.status_code == 200, moved.text
        capped = await client.patch(f"/admin/accounts/{account_id}", json={"max_concurrent": 5})
        assert capped.status_code == 200
        listed = (await client.get("/admin/audit", params={"target": account_id})).json()

    actions = [e["action"] for e in listed["entries"]]
    assert actions == ["account.update", "account.update", "account.create"]
    caps, move, create = listed["entries"]
    assert {e["actor"] for e in listed["entries"]} == {"sre@192.0.2.7"}
    assert create["before"] is None
    assert create["after"]["credential_names"] == ["api_key"]
    assert (move["before"]["base_url"], move["after"]["base_url"]) == (
        dispatcher.sim.url,
        "https://moved.example",
    )
    assert (caps["before"]["max_concurrent"], caps["after"]["max_concurrent"]) == (2, 5)

    async with dispatcher.engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT before, after FROM dispatcher.admin_audit"))
        ).all()
    dumped = json.dumps([list(row) for row in stored])
    for secret in (key, new_key, "ciphertext"):
        assert secret not in dumped

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "genbus.dispatcher", "audit", "list", "--target", account_id],
        env={"DATABASE_URL": dispatcher.settings.database_url, "GENBUS_CONNECTION_FILE": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["action"] for line in lines] == actions
