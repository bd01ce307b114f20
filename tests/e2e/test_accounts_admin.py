"""Accounts through the running system: `make run`'s sim-backed Pixverse accounts serve the old
system's command; the admin API and `genbus accounts` manage accounts; no credential is ever
shown, logged, or stored in plaintext."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import DEFAULT_ACCOUNTS, AccountSeed, GenbusSystem
from tests.e2e.conftest import running_system, wait_for, wait_terminal

pytestmark = pytest.mark.e2e

#: Provider keys that must never show up anywhere but the provider's own keys list.
SEEDED_SECRET = f"sk-seed-{uuid.uuid4().hex}"
CLI_SECRET = f"sk-cli-{uuid.uuid4().hex}"
ACCOUNTS = (*DEFAULT_ACCOUNTS, AccountSeed("secret-seed", SEEDED_SECRET, max_concurrent=2))


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[GenbusSystem]:
    sim_keys = sorted({a.api_key for a in ACCOUNTS} | {CLI_SECRET})
    sim_env = {
        "SIM_DURATION_S": "0.2",
        "SIM_DURATION_JITTER_S": "0",
        "SIM_KEYS": ",".join(sim_keys),
    }
    base = tmp_path_factory.mktemp("accounts-admin")
    with running_system(base, postgres, sim_env, ACCOUNTS) as genbus:
        yield genbus


def genbus_cli(system: GenbusSystem, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genbus.cli", *args],
        env={
            **os.environ,
            "GENBUS_ADMIN_URL": system.admin_url,
            "GENBUS_ADMIN_TOKEN": system.config.admin_token,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_old_systems_command_works_with_pixverse(api: httpx.Client, sim: httpx.Client) -> None:
    response = api.post(
        "/api/v1/jobs",
        headers={"Content-Type": "application/json"},
        content=(
            '{"operation_type": "text_to_video", "provider_id": "pixverse", '
            '"params": {"prompt": "test video", "quality": "720p"}}'
        ),
    )
    assert response.status_code == 201, response.text

    done = wait_terminal(api, f"/api/v1/jobs/{response.json()['id']}")

    assert done["status"] == "completed", done["error"]
    assert done["asset"]["url"].startswith("http")
    assert httpx.get(done["asset"]["url"], timeout=10.0).status_code == 200
    stats = sim.get("/_sim/stats").json()
    pixverse_keys = {a.api_key for a in DEFAULT_ACCOUNTS if a.provider_id == "pixverse"}
    assert sum(stats["keys"][key]["submissions"] for key in pixverse_keys) == 1
    assert stats["submissions"] == 1


def test_admin_api_requires_the_token(system: GenbusSystem) -> None:
    url = f"{system.admin_url}/admin/accounts"
    assert httpx.get(url, timeout=10.0).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.get(url, headers=wrong, timeout=10.0).status_code == 401


def test_accounts_are_managed_and_no_credential_is_ever_shown(
    system: GenbusSystem, admin: httpx.Client, api: httpx.Client, sim: httpx.Client
) -> None:
    seen: list[str] = []  # every response body and CLI output

    listing = genbus_cli(system, "accounts", "list")
    assert listing.returncode == 0, listing.stderr
    seen += [listing.stdout, listing.stderr]
    assert "pixverse-sim-1" in listing.stdout
    assert "secret-seed" in listing.stdout

    added = genbus_cli(
        system, "--json", "accounts", "add", "--provider", "sim", "--label", "cli-added",
        "--max-concurrent", "2", "--priority", "10", "--base-url", system.sim_url,
        "--credential", "api_key=CLI_KEY", CLI_KEY=CLI_SECRET,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    seen += [added.stdout, added.stderr]

    # The highest priority: the next sim job runs on it, with the credential it was given.
    response = api.post(
        "/api/v1/generations",
        json={"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "p"}},
    )
    done = wait_terminal(api, f"/api/v1/generations/{response.json()['id']}")
    assert done["status"] == "completed", done["error"]
    assert sim.get("/_sim/stats").json()["keys"][CLI_SECRET]["submissions"] == 1

    for call in [
        admin.get("/admin/accounts"),
        admin.get("/admin/accounts/cli-added"),
        admin.get("/admin/accounts/secret-seed"),
        admin.patch("/admin/accounts/secret-seed", json={"priority": 1}),
        admin.post("/admin/accounts/secret-seed/disable", json={"reason": "rotating"}),
        admin.post("/admin/accounts/secret-seed/enable"),
        admin.get("/admin/status"),
    ]:
        assert call.status_code == 200, call.text
        seen.append(call.text)
    as_json = genbus_cli(system, "--json", "accounts", "list")
    seen += [as_json.stdout, as_json.stderr]
    accounts = {a["id"]: a for a in _json(as_json.stdout)}
    assert accounts["cli-added"]["credential_names"] == ["api_key"]
    assert accounts["secret-seed"]["status"] == "active"

    for text in seen:
        assert SEEDED_SECRET not in text
        assert CLI_SECRET not in text
    assert_not_in_files(system.config.base_dir, [SEEDED_SECRET, CLI_SECRET])
    rows = wait_for(lambda: _account_rows(system), lambda r: len(r) == len(ACCOUNTS) + 1)
    for row in rows:
        assert SEEDED_SECRET not in row
        assert CLI_SECRET not in row


def assert_not_in_files(base: Path, secrets: list[str]) -> None:
    """No file the system wrote (service logs, NATS log and store) holds a secret."""
    files = [path for path in base.rglob("*") if path.is_file()]
    assert any(path.suffix == ".log" for path in files)
    for path in files:
        data = path.read_bytes()
        for value in secrets:
            assert value.encode() not in data, f"{value[:10]}… found in {path}"


def _account_rows(system: GenbusSystem) -> list[str]:
    async def fetch() -> list[str]:
        conn = await asyncpg.connect(system.config.database_url)
        try:
            rows = await conn.fetch("SELECT a::text AS row FROM dispatcher.provider_accounts a")
        finally:
            await conn.close()
        return [r["row"] for r in rows]

    return asyncio.run(fetch())


def _json(text: str) -> Any:
    return json.loads(text)
