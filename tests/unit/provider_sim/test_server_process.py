"""The real thing: `genbus-provider-sim` as a process, over real HTTP."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

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


@pytest.fixture
def server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    env = {
        **os.environ,
        "UV_PYTHON_DOWNLOADS": "never",
        "SIM_PORT": str(port),
        "SIM_KEYS": "proc-key",
        "SIM_DURATION_S": "0",
        "SIM_DURATION_JITTER_S": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "genbus.provider_sim"],
        env=env,
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
