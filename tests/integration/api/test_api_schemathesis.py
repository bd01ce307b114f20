"""Schemathesis against the live api (uvicorn, real Postgres and NATS): for every operation, a
bounded number of generated requests (the spec's examples, boundary values, random valid and
invalid data) gets no 5xx and no response the OpenAPI document does not describe.

It runs Schemathesis's own runner (`schemathesis run`, the CLI): its pytest plugin does not work
with pytest 9.2 (it sets `Node._nodeid`, which pytest no longer has).
The live-status streams are included: the api under test closes every stream after 0.3 s
(`sse_max_stream_s`), so that a generated request to an open one ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvicorn

from genbus.api.config import ApiSettings
from genbus.api.entrypoints.cli import create_key
from genbus.api.entrypoints.http.app import create_app
from genbus.devstack.nats import NatsServer
from genbus.devstack.ports import free_port
from genbus.devstack.postgres import PostgresServer
from tests.conftest import provision_server

pytestmark = pytest.mark.integration

#: Per operation and phase: bounded so that the run stays well under a minute on 2 cores.
MAX_EXAMPLES = 25
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@pytest.fixture(scope="module")
def live_url(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The api served by uvicorn in a thread of its own; yields (base URL, an API key)."""
    base: Path = tmp_path_factory.mktemp("schemathesis")
    nats = NatsServer(base / "nats")
    nats.start()
    provision_server(nats)
    database = f"st_{uuid.uuid4().hex[:12]}"
    postgres.create_database(database)
    settings_ = ApiSettings(
        database_url=postgres.dsn_for(database),
        nats_url=nats.url_for("api"),
        port=free_port(),
        rate_limit_per_s=100_000,
        rate_limit_burst=100_000,
        # Schemathesis reads a stream of an open generation until it ends (or its request
        # timeout): streams closed early keep those reads short.
        sse_max_stream_s=0.3,
        log_level="WARNING",
    )
    # Its own thread: migrations and key creation run their own event loops.
    with ThreadPoolExecutor(1) as pool:
        issued = pool.submit(create_key, settings_, user_id="fuzzer", name="schemathesis").result()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings_),
            host="127.0.0.1",
            port=settings_.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the api failed to start"
        assert time.monotonic() < deadline, "the api did not start in time"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings_.port}", issued.secret
    finally:
        server.should_exit = True
        thread.join(30)
        nats.stop()


def test_the_live_api_conforms_to_its_spec(live_url: tuple[str, str], tmp_path: Path) -> None:
    base_url, key = live_url
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20250101",
        # One worker: Hypothesis describes filter lambdas with `ast.parse`, which on CPython 3.11
        # is not thread-safe ("AST constructor recursion depth mismatch" from a second worker).
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout or "passed" in result.stdout, report
