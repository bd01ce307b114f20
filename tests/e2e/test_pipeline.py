"""One generation from POST to its terminal state, through every service as a real process."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import wait_terminal
from tests.e2e.costs_and_usage import (  # noqa: F401  (run on this module's system)
    test_actual_costs_equal_the_sims_credits_used_and_usage_agrees_with_the_rows,
    test_the_dispatcher_reads_the_pixverse_accounts_balances,
)

pytestmark = pytest.mark.e2e


def test_generation_completes_with_an_asset(api: httpx.Client, sim: httpx.Client) -> None:
    response = api.post(
        "/api/v1/generations",
        json={
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": "a lighthouse at dusk", "quality": "720p"},
        },
    )
    assert response.status_code == 201, response.text
    generation = response.json()
    assert generation["status"] == "pending"

    done = wait_terminal(api, f"/api/v1/generations/{generation['id']}")

    assert done["status"] == "completed", done
    assert done["asset"]["url"].startswith("http")
    assert done["asset"]["media_type"]
    assert done["error"] is None
    assert done["provider_job_id"]
    media = httpx.get(done["asset"]["url"], timeout=10.0)
    assert media.status_code == 200
    assert media.content
    stats = sim.get("/_sim/stats").json()
    assert stats["submissions"] == 1
    assert stats["duplicate_references"] == 0


def test_provider_failure_ends_failed_with_its_code(api: httpx.Client, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"fail_rate": 1.0}).raise_for_status()
    response = api.post(
        "/api/v1/generations",
        json={"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "x"}},
    )
    assert response.status_code == 201, response.text

    done = wait_terminal(api, f"/api/v1/generations/{response.json()['id']}")

    assert done["status"] == "failed"
    assert done["error"]["code"] == "generation_failed"
    assert done["asset"] is None


def test_content_rejection_fails_at_submission(api: httpx.Client, sim: httpx.Client) -> None:
    response = api.post(
        "/api/v1/generations",
        json={
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": "something [reject] worthy"},
        },
    )
    done = wait_terminal(api, f"/api/v1/generations/{response.json()['id']}")
    assert done["status"] == "failed"
    assert done["error"]["code"] == "content_rejected"
    assert sim.get("/_sim/stats").json()["submissions"] == 0


def test_the_old_systems_curl_works_unchanged(api: httpx.Client, sim: httpx.Client) -> None:
    response = api.post(
        "/api/v1/jobs",
        headers={"Content-Type": "application/json"},
        content=(
            '{"operation_type": "text_to_video", "provider_id": "sim", '
            '"params": {"prompt": "test video", "quality": "720p"}}'
        ),
    )
    assert response.status_code == 201, response.text
    done = wait_terminal(api, f"/api/v1/jobs/{response.json()['id']}")
    assert done["status"] == "completed"
    assert done["asset"]["url"]


def test_unknown_provider_is_refused_and_leaves_nothing(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/jobs",
        json={"operation_type": "text_to_video", "provider_id": "nope", "params": {"prompt": "x"}},
    )
    assert response.status_code == 422
    assert "provider_id" in response.text
