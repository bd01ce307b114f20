"""The real thing: `genbus-provider-sim` as a process, over real HTTP."""

import os
import signal
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from .helpers import sim_process


@pytest.fixture
def server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with sim_process(SIM_KEYS="proc-key", SIM_DURATION_S="0", SIM_DURATION_JITTER_S="0") as server:
        yield server


def test_round_trip_over_real_http(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    base_url, process = server
    headers = {"Authorization": "Bearer proc-key"}
    with httpx.Client(base_url=base_url, timeout=5) as client:
        created = client.post(
            "/v1/jobs",
            json={"operation": "text_to_video", "prompt": "a cat", "client_reference": "g-1"},
            headers=headers,
        )
        job = client.get(f"/v1/jobs/{created.json()['id']}", headers=headers).json()
        video = client.get(job["output"]["url"])
        stats = client.get("/_sim/stats").json()

    assert created.status_code == 201
    assert job["status"] == "succeeded"
    assert job["output"]["url"] == f"{base_url}/v1/files/{job['id']}"
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert stats["submissions"] == 1
    assert stats["status_requests"] == 1

    os.kill(process.pid, signal.SIGTERM)
    # uvicorn re-raises the SIGTERM it handled once its shutdown is complete.
    assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/_sim/config", timeout=1)
