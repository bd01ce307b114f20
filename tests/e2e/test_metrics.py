"""Each running service's /metrics shows its domain metrics moving while a generation runs."""

from __future__ import annotations

import httpx
import pytest

from genbus.devstack.system import GenbusSystem
from tests.e2e.conftest import wait_terminal

pytestmark = pytest.mark.e2e


def _sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of metric `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def _scrape(system: GenbusSystem) -> dict[str, str]:
    return {
        name: httpx.get(f"{system.http_url(name)}/metrics", timeout=10).text
        for name in ("api", "dispatcher", "poller")
    }


def test_domain_metrics_move_with_a_generation(
    system: GenbusSystem, api: httpx.Client, sim: httpx.Client
) -> None:
    before = _scrape(system)
    response = api.post(
        "/api/v1/generations",
        json={"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "m"}},
    )
    assert wait_terminal(api, f"/api/v1/generations/{response.json()['id']}")["status"] == (
        "completed"
    )
    after = _scrape(system)

    def moved(service: str, name: str, **labels: str) -> bool:
        return _sample(after[service], name, **labels) > _sample(before[service], name, **labels)

    assert moved("api", "genbus_generation_transitions_total", status="completed")
    assert moved("dispatcher", "genbus_requested_to_submitted_seconds_count")
    assert moved("dispatcher", "genbus_provider_calls_total", provider="sim")
    assert moved("poller", "genbus_provider_calls_total", provider="sim")
    assert moved("poller", "genbus_done_to_completed_seconds_count")
    assert "genbus_account_slots" in after["dispatcher"]
    assert "genbus_dispatch_queue_depth" in after["dispatcher"]
