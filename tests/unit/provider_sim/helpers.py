"""Test helpers: a hand-driven clock, a quiet config, a client wrapper for the simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from genbus.provider_sim import SimConfig, SimState

BASE_URL = "http://sim.test"
KEY1 = {"Authorization": "Bearer sim-key-1"}
KEY2 = {"Authorization": "Bearer sim-key-2"}


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sim:
    client: httpx.AsyncClient
    state: SimState
    clock: FakeClock

    async def submit(
        self,
        prompt: str = "a cat",
        *,
        headers: dict[str, str] | None = None,
        reference: str | None = "gen-1",
        **params: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {"operation": "text_to_video", "prompt": prompt, **params}
        if reference is not None:
            body["client_reference"] = reference
        return await self.client.post(
            "/v1/jobs", json=body, headers=KEY1 if headers is None else headers
        )

    async def job(self, job_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(
            f"/v1/jobs/{job_id}", headers=KEY1 if headers is None else headers
        )

    async def stats(self) -> dict[str, Any]:
        response = await self.client.get("/_sim/stats")
        assert response.status_code == 200
        stats: dict[str, Any] = response.json()
        return stats


def make_config(**overrides: Any) -> SimConfig:
    """A quiet, deterministic config: 10 s jobs, no faults, unless overridden."""
    values: dict[str, Any] = {
        "keys": ["sim-key-1", "sim-key-2", "sim-key-3", "sim-key-4"],
        "seed": 1234,
        "duration_s": 10.0,
        "duration_jitter_s": 0.0,
        "queued_fraction": 0.1,
        "fail_rate": 0.0,
        "moderation_rate": 0.0,
        "rate_limit_rate": 0.0,
        "retry_after_s": 1,
        "error_5xx_rate": 0.0,
        "latency_ms": 0.0,
        "per_key_concurrency": None,
        "enforce_concurrency": True,
        "per_key_credits": {},
        "default_credits": None,
    }
    values.update(overrides)
    return SimConfig(**values)


MakeSim = Callable[..., Sim]
