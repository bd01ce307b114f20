"""`genbus-dev run` (what `make run` runs) really started: its terminal shows one line per
service, the URLs and the curl lines, and nothing that reads as a failure; it leaves the
connection facts for the tools; Ctrl-C (SIGTERM here) stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from genbus.devstack.ports import free_port
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.processes import wait_until

pytestmark = pytest.mark.e2e

FAILURE = re.compile(r"traceback|\berror\b|exception|\[error|exited unexpectedly", re.IGNORECASE)


def test_make_run_first_screen_is_clean(tmp_path: Path, postgres: PostgresServer) -> None:
    postgres.create_database("make_run_screen")
    env = {
        **os.environ,
        # The session's Postgres (an external one for the launcher); NATS is started by it.
        "DATABASE_URL": postgres.dsn_for("make_run_screen"),
        "NO_COLOR": "1",
    }
    env.pop("NATS_URL", None)
    ports = [str(free_port()) for _ in range(3)]
    argv = [sys.executable, "-m", "genbus.devstack", "run", "--dir", str(tmp_path)]
    argv += ["--api-port", ports[0], "--sim-port", ports[1], "--admin-port", ports[2]]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("ready; Ctrl-C" in line for line in lines),
            180.0,
            description="genbus-dev run is ready",
            abort=lambda: None if process.poll() is None else f"exited: {lines[-20:]}",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)
    screen = "\n".join(lines)
    assert process.returncode == 0, screen
    for service in ("sim", "dispatcher", "poller", "api"):
        assert re.search(rf"\| {service} +started \(pid \d+\), log ", screen), screen
    assert f"http://localhost:{ports[2]}/console/" in screen
    assert f"curl -X POST http://localhost:{ports[0]}/api/v1/jobs" in screen
    assert not FAILURE.search(screen), screen
    facts = tmp_path / "connection.json"
    assert stat.S_IMODE(facts.stat().st_mode) == 0o600
