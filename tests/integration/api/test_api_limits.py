"""Per-key limits, costs and usage on the real app and Postgres: the daily quota is exact under
concurrency, entitlements are 403 naming the field, a reported cost is recorded (and an event
without one accepted), and usage totals agree with the rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_harness import USER, Api, completed_event, submitted_event

from genbus.api.service_layer.api_keys import issue_api_key, set_key_limits
from genbus.api.service_layer.usage import usage
from genbus.contracts import COMPLETED, SUBMITTED
from genbus.contracts.topology import API_COMPLETED
from tests.figures import report as figure

pytestmark = pytest.mark.integration

BODY = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "a cat"}}


async def _client_with(api: Api, user_id: str, **overrides: Any) -> httpx.AsyncClient:
    issued = await issue_api_key(
        api.runtime.uow(), user_id=user_id, name="t", now=datetime.now(UTC)
    )
    await set_key_limits(
        api.runtime.uow(), issued.key.id, tiers=api.runtime.tiers, overrides=overrides
    )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app),
        base_url="http://api.test",
        headers={"Authorization": f"Bearer {issued.secret}"},
    )
    api._clients.append(client)
    return client


async def test_twenty_concurrent_creates_at_a_quota_of_ten_create_exactly_ten(api: Api) -> None:
    client = await _client_with(api, "quota-user", daily_quota=10)
    answers = await asyncio.gather(
        *(client.post("/api/v1/generations", json=BODY) for _ in range(20))
    )
    statuses = sorted(a.status_code for a in answers)
    figure(
        f"quota 10, 20 concurrent creates: {statuses.count(201)} created, "
        f"{statuses.count(429)} refused (quota_exceeded)"
    )
    assert statuses == [201] * 10 + [429] * 10
    refused = next(a for a in answers if a.status_code == 429)
    body = refused.json()
    assert body["code"] == "quota_exceeded"
    resets_at = datetime.fromisoformat(body["resets_at"])
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert (resets_at.date(), resets_at.hour, resets_at.minute) == (tomorrow, 0, 0)
    wait_s = (resets_at - datetime.now(UTC)).total_seconds()
    assert abs(int(refused.headers["Retry-After"]) - wait_s) < 5
    rows = await api.fetch(
        "SELECT count(*) AS n FROM api.generations WHERE user_id = $1", "quota-user"
    )
    assert rows[0]["n"] == 10
    me = (await client.get("/api/v1/me")).json()
    assert me["limits"]["daily_quota"] == 10
    assert (me["today"]["created"], me["today"]["remaining"]) == (10, 0)
    assert me["tier"] == "default"


async def test_entitlements_are_403_naming_each_field_and_create_nothing(api: Api) -> None:
    client = await _client_with(
        api, "limited", providers=["pixverse"], max_priority=3, daily_quota=5
    )
    refused = await client.post("/api/v1/generations", json={**BODY, "priority": 9})
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["code"] == "not_entitled"
    assert {e["field"] for e in body["errors"]} == {"provider_id", "priority"}
    assert await api.count("generations") == 0
    me = (await client.get("/api/v1/me")).json()
    assert (me["limits"]["providers"], me["limits"]["max_priority"]) == (["pixverse"], 3)
    assert me["today"]["created"] == 0


async def test_costs_are_recorded_and_usage_totals_agree_with_the_rows(api: Api) -> None:
    created = [await api.create(**BODY) for _ in range(3)]
    assert {g["estimated_cost"] for g in created} == {1.0}  # the default price of the sim
    seqs = []
    for n, g in enumerate(created):
        account = f"acct-{n % 2}"
        seqs.append(await api.publish(SUBMITTED, submitted_event(g, account_id=account)))
        # The last one's event is an older producer's: no `cost` at all.
        cost = {"cost": 1.0 + n} if n < 2 else {}
        seqs.append(await api.publish(COMPLETED, completed_event(g, account_id=account, **cost)))
    await api.wait_consumed(API_COMPLETED, max(seqs))
    done = [await api.wait_status(g["id"], "completed") for g in created]
    assert [g["actual_cost"] for g in done] == [1.0, 2.0, None]

    mine = await api.client.get("/api/v1/usage")
    assert mine.status_code == 200, mine.text
    total = mine.json()["total"]
    assert (total["generations"], total["actual_cost"], total["estimated_cost"]) == (3, 3.0, 3.0)
    admin = await api.client_as("ops", admin=True)
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    by_account = await admin.get("/api/v1/admin/usage", params={"by": "account", "from": start})
    assert by_account.status_code == 200, by_account.text
    groups = {g["key"]: g for g in by_account.json()["groups"]}
    rows = await api.fetch(
        "SELECT account_id, count(*) AS n, sum(actual_cost) AS cost FROM api.generations "
        "GROUP BY account_id"
    )
    assert {r["account_id"]: (r["n"], r["cost"]) for r in rows} == {
        k: (g["generations"], g["actual_cost"]) for k, g in groups.items()
    }
    report = await usage(
        api.runtime.uow(), start=None, end=None, group_by="user", now=datetime.now(UTC)
    )
    assert [(r.key, r.generations) for r in report.rows] == [(USER, 3)]
    by_provider = await admin.get(
        "/api/v1/admin/usage", params={"by": "provider", "user": USER, "from": start}
    )
    assert [(g["key"], g["generations"]) for g in by_provider.json()["groups"]] == [("sim", 3)]
    nobody = await admin.get("/api/v1/admin/usage", params={"user": "nobody", "from": start})
    assert nobody.json()["total"]["generations"] == 0
    backwards = await admin.get(
        "/api/v1/admin/usage", params={"from": start, "to": "2000-01-01T00:00:00Z"}
    )
    assert (backwards.status_code, backwards.json()["errors"][0]["field"]) == (422, "from")
    forbidden = await api.client.get("/api/v1/admin/usage")
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "admin_only")
