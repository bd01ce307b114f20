"""API keys end to end: made with the `genbus-api keys` CLI against the running system, used
over HTTP, scoped to their user, listed without secrets, revoked at once."""

from __future__ import annotations

import json

import httpx
import pytest

from genbus.devstack.system import GenbusSystem
from tests.e2e.conftest import api_cli, wait_terminal

pytestmark = pytest.mark.e2e


def test_a_key_created_with_the_cli_works_and_can_be_revoked(
    system: GenbusSystem, api: httpx.Client, sim: httpx.Client
) -> None:
    created = api_cli(system, "keys", "create", "--user", "e2e-user", "--name", "e2e")
    key = created["key"]
    assert key.startswith("gbk_")
    assert created["prefix"] == key[:12]
    assert created["user_id"] == "e2e-user"

    with httpx.Client(
        base_url=system.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=10.0
    ) as client:
        response = client.post(
            "/api/v1/generations",
            json={
                "operation_type": "text_to_video",
                "provider_id": "sim",
                "params": {"prompt": "a key of one's own"},
            },
        )
        assert response.status_code == 201, response.text
        generation = response.json()
        assert generation["user_id"] == "e2e-user"
        done = wait_terminal(client, f"/api/v1/generations/{generation['id']}")
        assert done["status"] == "completed"

        # The anonymous local user (GENBUS_API_ALLOW_ANONYMOUS) is another user.
        assert api.get(f"/api/v1/generations/{generation['id']}").status_code == 404
        listed = client.get("/api/v1/generations").json()["items"]
        assert [g["id"] for g in listed] == [generation["id"]]

        keys = api_cli(system, "keys", "list", "--user", "e2e-user")
        assert [k["id"] for k in keys] == [created["id"]]
        assert key not in json.dumps(keys)

        revoked = api_cli(system, "keys", "revoke", created["id"])
        assert revoked["revoked_at"] is not None
        refused = client.get(f"/api/v1/generations/{generation['id']}")
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
