"""Costs and usage on the running system with the sim: each generation's recorded actual cost
comes from the provider (the sim's job status; Pixverse's generate answer), and per account they
add up to the sim's `credits_used` of that account's key; usage by user and by account (admin
API, with a key made by the keys CLI) agrees with the rows; the dispatcher reads balances.

Collected in `test_pipeline.py` (imported there): they run on its system, not on one of their
own (starting a system is most of an e2e module's time)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from genbus.devstack.system import DEFAULT_ACCOUNTS, GenbusSystem
from tests.e2e.conftest import api_cli, wait_for, wait_terminal
from tests.figures import report

KEY_OF_LABEL = {seed.label: seed.api_key for seed in DEFAULT_ACCOUNTS}


def _create(api: httpx.Client, provider_id: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        body = {
            "operation_type": "text_to_video",
            "provider_id": provider_id,
            "params": {"prompt": f"a lighthouse {i}", "quality": "720p", "duration": 5},
        }
        response = api.post("/api/v1/generations", json=body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_actual_costs_equal_the_sims_credits_used_and_usage_agrees_with_the_rows(
    system: GenbusSystem, api: httpx.Client, sim: httpx.Client, admin: httpx.Client
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    ids = _create(api, "sim", 12) + _create(api, "pixverse", 6)
    done = [wait_terminal(api, f"/api/v1/generations/{i}", timeout=60) for i in ids]
    assert {g["status"] for g in done} == {"completed"}, [g["error"] for g in done]
    assert all(g["actual_cost"] is not None for g in done)
    assert {g["estimated_cost"] for g in done if g["provider_id"] == "sim"} == {1.0}

    labels = {a["id"]: a["label"] for a in admin.get("/admin/accounts").json()["accounts"]}
    cost_by_key: dict[str, float] = defaultdict(float)
    for g in done:
        cost_by_key[KEY_OF_LABEL[labels[g["account_id"]]]] += g["actual_cost"]
    used = {
        key: stats["credits_used"]
        for key, stats in sim.get("/_sim/stats").json()["keys"].items()
        if stats["credits_used"]
    }
    report(f"actual costs by sim key {dict(cost_by_key)}; sim credits_used {used}")
    assert cost_by_key == used

    ops = api_cli(system, "keys", "create", "--user", "ops", "--name", "e2e", "--admin")
    headers = {"Authorization": f"Bearer {ops['key']}"}
    window = {
        "from": start.isoformat(),
        "to": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
    }
    by_account = admin_usage = api.get(
        "/api/v1/admin/usage", params={**window, "by": "account"}, headers=headers
    )
    assert by_account.status_code == 200, by_account.text
    rows_by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in done:
        rows_by_account[g["account_id"]].append(g)
    groups = {g["key"]: g for g in admin_usage.json()["groups"]}
    assert set(groups) == set(rows_by_account)
    for account_id, rows in rows_by_account.items():
        assert groups[account_id]["generations"] == len(rows)
        assert groups[account_id]["actual_cost"] == sum(r["actual_cost"] for r in rows)
    by_user = api.get("/api/v1/admin/usage", params={**window, "by": "user"}, headers=headers)
    [user] = by_user.json()["groups"]
    assert (user["key"], user["generations"]) == (done[0]["user_id"], len(done))
    assert user["actual_cost"] == sum(g["actual_cost"] for g in done) == sum(used.values())
    cli = api_cli(
        system, "usage", "--by", "account", "--from", window["from"], "--to", window["to"]
    )
    assert cli["groups"] == admin_usage.json()["groups"]
    mine = api.get("/api/v1/usage", params=window).json()
    assert mine["total"]["generations"] == len(done)
    report(
        f"usage: {len(done)} generations, actual cost {user['actual_cost']}, "
        f"{len(groups)} accounts; admin API, CLI and rows agree"
    )


def test_the_dispatcher_reads_the_pixverse_accounts_balances(
    system: GenbusSystem, admin: httpx.Client
) -> None:
    def pixverse_credits() -> list[Any]:
        listed = admin.get("/admin/accounts").json()["accounts"]
        return [a["credits"] for a in listed if a["provider_id"] == "pixverse"]

    # The sim's unlimited keys show Pixverse's shape of a balance: a large number of credits.
    credits = wait_for(pixverse_credits, lambda c: c and all(n is not None for n in c))
    assert all(n > 0 for n in credits)
