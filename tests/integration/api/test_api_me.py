"""`GET /api/v1/me`: the caller's user and key prefix, the check other services (webhooks)
authenticate callers with; 401 for no key or a revoked one."""

from __future__ import annotations

import httpx
import pytest
from api_harness import Api

pytestmark = pytest.mark.integration


async def test_me_names_the_keys_user_and_prefix_and_refuses_a_bad_key(api: Api) -> None:
    key = await api.new_key("carol", admin=True)
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, me.text
        body = me.json()
        assert (body["user_id"], body["key_prefix"], body["admin"]) == ("carol", key[:12], True)
        assert key not in me.text
        for headers in ({}, {"Authorization": "Bearer gbk_" + "x" * 43}):
            refused = await client.get("/api/v1/me", headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
