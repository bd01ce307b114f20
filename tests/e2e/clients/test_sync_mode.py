"""Sync mode on the running system: `Prefer: wait=N` answers once the generation is terminal,
or after N seconds with its state then."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

BODY: dict[str, Any] = {
    "operation_type": "text_to_video",
    "provider_id": "sim",
    "params": {"prompt": "sync mode", "quality": "720p"},
}


def test_create_with_wait_returns_the_terminal_generation_in_one_call(
    api: httpx.Client,
) -> None:
    started = time.monotonic()
    response = api.post("/api/v1/generations", json=BODY, headers={"Prefer": "wait=30"}, timeout=40)
    elapsed = time.monotonic() - started
    assert response.status_code == 201, response.text
    assert response.headers["Preference-Applied"] == "wait=30"
    body = response.json()
    assert body["status"] == "completed", body
    assert body["asset"]["url"]
    # Woken by the completion, not by the end of the wait.
    assert elapsed < 15, elapsed


def test_get_with_wait_returns_once_terminal(api: httpx.Client) -> None:
    created = api.post("/api/v1/generations", json=BODY)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    assert "Preference-Applied" not in created.headers
    path = f"/api/v1/generations/{created.json()['id']}"
    response = api.get(path, headers={"Prefer": "wait=30"}, timeout=40)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    # Terminal already: answered at once; a wait over the maximum is applied as the maximum.
    again = api.get(path, headers={"Prefer": "respond-async, wait=600"})
    assert again.headers["Preference-Applied"] == "wait=60"
    assert again.json()["status"] == "completed"


def test_a_long_job_returns_its_pending_state_after_the_wait(api: httpx.Client) -> None:
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    started = time.monotonic()
    response = api.post(
        "/api/v1/generations",
        json={**BODY, "scheduled_at": later},
        headers={"Prefer": "wait=2"},
        timeout=20,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 201, response.text
    assert response.headers["Preference-Applied"] == "wait=2"
    assert response.json()["status"] == "pending"
    assert response.json()["wait_reason"] == "scheduled"
    assert 2 <= elapsed < 10, elapsed

    path = f"/api/v1/generations/{response.json()['id']}"
    started = time.monotonic()
    read = api.get(path, headers={"Prefer": "wait=1"})
    assert read.status_code == 200
    assert read.json()["status"] == "pending"
    assert time.monotonic() - started >= 1
    assert api.post(f"{path}/cancel").status_code == 200


def test_a_bad_wait_is_a_422(api: httpx.Client) -> None:
    response = api.post("/api/v1/generations", json=BODY, headers={"Prefer": "wait=-1"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Prefer"
