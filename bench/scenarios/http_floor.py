"""What one POST costs a bare FastAPI app served by uvicorn (`bench.bare_api`): the floor under
the api's intake, whatever genbus does behind it. The server runs in its own process, served as
the api is (uvloop, httptools, no access log); its CPU (psutil) is read around `n` POSTs sent by
`clients` concurrent keep-alive connections."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import psutil

from genbus.devstack.ports import free_port

REPO = Path(__file__).resolve().parents[2]
BODY = {"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "floor"}}
_STARTUP_S = 30.0


async def bare_fastapi_post_cpu_us(n: int, clients: int = 32) -> float:
    """Server CPU (µs) per POST of the bare app, after a warm-up of `n // 10` POSTs."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_api:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        cwd=REPO,
    )
    try:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10.0
        ) as client:
            await _until_up(client, server)
            await _post(client, max(n // 10, clients), clients)
            process = psutil.Process(server.pid)
            before = process.cpu_times()
            await _post(client, n, clients)
            after = process.cpu_times()
        used_s = (after.user - before.user) + (after.system - before.system)
        return used_s / n * 1e6
    finally:
        if server.returncode is None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 10)
            except TimeoutError:
                server.kill()
                await server.wait()


async def _until_up(client: httpx.AsyncClient, server: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + _STARTUP_S
    while True:
        if server.returncode is not None:
            raise RuntimeError(f"the bare app exited with {server.returncode}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bare app did not answer within {_STARTUP_S:.0f} s")
        await asyncio.sleep(0.05)


async def _post(client: httpx.AsyncClient, n: int, clients: int) -> None:
    left = n

    async def one_client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            response = await client.post("/api/v1/generations", json=BODY)
            if response.status_code != 201:
                raise RuntimeError(f"bare app answered {response.status_code}: {response.text}")

    await asyncio.gather(*(one_client() for _ in range(clients)))
