"""Test helpers: a hand-driven clock, a quiet config, a client wrapper, the sim as a process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

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
    app: FastAPI

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

    async def find(self, reference: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(
            "/v1/jobs",
            params={"client_reference": reference},
            headers=KEY1 if headers is None else headers,
        )

    async def stats(self) -> dict[str, Any]:
        response = await self.client.get("/_sim/stats")
        assert response.status_code == 200
        stats: dict[str, Any] = response.json()
        return stats

    async def raw_post(self, path: str, body: object, headers: dict[str, str]) -> list[Message]:
        """POST straight to the ASGI app: every message it sends (httpx's ASGITransport
        refuses an app that returns mid-response, which is what a lost answer does)."""
        content = json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"sim.test"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in headers.items()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("sim.test", 80),
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": content, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        return sent


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
        "submit_latency_ms": 0.0,
        "accepted_response_delay_ms": 0.0,
        "lost_response_rate": 0.0,
        "per_key_concurrency": None,
        "enforce_concurrency": True,
        "per_key_credits": {},
        "default_credits": None,
    }
    values.update(overrides)
    return SimConfig(**values)


MakeSim = Callable[..., Sim]


# -- the simulator as a real process ---------------------------------------------------------

STARTUP_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_serving(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the simulator exited during start-up"
        try:
            if httpx.get(f"{base_url}/_sim/config", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # readiness polling, not synchronization of the test's logic
    pytest.fail("the simulator did not start listening in time")


@contextmanager
def sim_process(**env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`genbus-provider-sim` on a free port with `env` (`SIM_*`) added: (base URL, process)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "genbus.provider_sim"],
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "SIM_PORT": str(port), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_serving(base_url, process)
        yield base_url, process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
