"""Cancel through the running system: queued jobs never reach the provider, running ones are
cancelled at the provider, and the first terminal state wins."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import post_generation, wait_for, wait_terminal

pytestmark = pytest.mark.e2e


def test_cancel_queued_and_running_generations(api: httpx.Client, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"duration_s": 30.0, "duration_jitter_s": 0.0}).raise_for_status()
    slots = 8  # the e2e system's two sim accounts, 4 slots each
    running: list[dict[str, Any]] = []
    try:
        running.extend(post_generation(api, f"long {i}") for i in range(slots))
        wait_for(
            lambda: [api.get(f"/api/v1/generations/{g['id']}").json()["status"] for g in running],
            lambda statuses: all(s == "processing" for s in statuses),
        )
        queued = post_generation(api, "waits for a slot")

        response = api.post(f"/api/v1/generations/{queued['id']}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"

        response = api.post(f"/api/v1/generations/{running[0]['id']}/cancel")
        assert response.status_code == 202, response.text
        cancelled_running = wait_terminal(api, f"/api/v1/generations/{running[0]['id']}")
        assert cancelled_running["status"] == "cancelled"

        again = api.post(f"/api/v1/generations/{running[0]['id']}/cancel")
        assert again.status_code == 409

        stats = sim.get("/_sim/stats").json()
        assert stats["submissions"] == slots  # the queued one never reached the provider
        assert stats["cancels"] == 1
        final = api.get(f"/api/v1/generations/{queued['id']}").json()
        assert final["status"] == "cancelled"
        assert final["provider_job_id"] is None
    finally:
        for generation in running:
            api.post(f"/api/v1/generations/{generation['id']}/cancel")
        for generation in running:
            wait_terminal(api, f"/api/v1/generations/{generation['id']}")
