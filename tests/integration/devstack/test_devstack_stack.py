from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from genbus.devstack import LocalInfra, Stack
from genbus.devstack.processes import descendants, pid_alive
from genbus.runtime.nats_client import connect_nats

pytestmark = pytest.mark.integration


class Fake:
    def __init__(self, name: str, events: list[str], fail: bool = False) -> None:
        self.name = name
        self.events = events
        self.fail = fail
        self.running = False

    def start(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} failed")
        self.running = True
        self.events.append(f"start {self.name}")

    def stop(self) -> None:
        self.running = False
        self.events.append(f"stop {self.name}")

    def is_running(self) -> bool:
        return self.running


def test_stack_stops_in_reverse_order_also_when_a_start_fails() -> None:
    events: list[str] = []
    with Stack([Fake("a", events), Fake("b", events)]) as stack:
        assert stack.is_running()
    assert events == ["start a", "start b", "stop b", "stop a"]

    events.clear()
    stack = Stack([Fake("a", events), Fake("b", events), Fake("c", events, fail=True)])
    with pytest.raises(RuntimeError, match="c failed"):
        stack.start()
    assert events == ["start a", "start b", "stop b", "stop a"]


async def test_local_infra_starts_and_stops_both_servers(base_dir: Path) -> None:
    infra = LocalInfra(base_dir, use_env=False, postgres_fast=True, database="genbus")
    async with infra:
        assert infra.nats is not None
        assert infra.postgres is not None
        assert infra.nats.security is not None
        assert infra.env() == {
            "NATS_URL": infra.nats_url,
            "DATABASE_URL": infra.database_url,
            "GENBUS_NATS_TLS_CA": str(infra.nats.security.tls.ca_file),
        }
        assert infra.database_url.endswith("/genbus")
        nc = await connect_nats(infra.nats.admin_url)
        assert (await nc.jetstream().account_info()) is not None
        await nc.close()
        conn = await asyncpg.connect(infra.database_url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        assert infra.nats.pid is not None
        assert infra.postgres.pid is not None
        pids = {infra.nats.pid, infra.postgres.pid} | descendants(infra.postgres.pid)
        assert infra.is_running()
    assert not any(pid_alive(pid) for pid in pids)
    assert (base_dir / "nats.log").is_file()
    assert (base_dir / "postgres.log").is_file()


def test_local_infra_uses_external_urls_from_the_environment(
    base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATS_URL", "nats://nats.example:4222")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:5432/genbus")
    with LocalInfra(base_dir) as infra:
        assert infra.components == []
        assert infra.nats is None
        assert infra.postgres is None
        assert infra.nats_url == "nats://nats.example:4222"
        assert infra.database_url == "postgresql://u@db.example:5432/genbus"
    assert list(base_dir.iterdir()) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_infra_prints_urls_and_stops_everything_on_signal(
    base_dir: Path, sig: signal.Signals
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    argv = [sys.executable, "-m", "genbus.devstack", "infra", "--dir", str(base_dir), "--fast"]
    cli = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert cli.stdout is not None
        for line in cli.stdout:  # blocks until the CLI says it is ready (or exits)
            output.append(line.rstrip("\n"))
            if "ready; Ctrl-C to stop" in line:
                break
        urls = dict(line.split("=", 1) for line in output if "_URL=" in line)
        assert urls["NATS_URL"].startswith("tls://127.0.0.1:")
        assert urls["DATABASE_URL"].startswith("postgresql://postgres@127.0.0.1:")
        ca = next(
            line.split("=", 1)[1] for line in output if line.startswith("GENBUS_NATS_TLS_CA=")
        )
        assert (base_dir / "env").read_text().splitlines() == [
            f"NATS_URL={urls['NATS_URL']}",
            f"DATABASE_URL={urls['DATABASE_URL']}",
            f"GENBUS_NATS_TLS_CA={ca}",
        ]
        pids = {int(line.split(" pid ")[1].split(",")[0]) for line in output if " pid " in line}
        assert len(pids) == 2
        assert all(pid_alive(pid) for pid in pids)
        pids |= {child for pid in pids for child in descendants(pid)}

        cli.send_signal(sig)
        assert cli.wait(timeout=30) == 0
        output += cli.stdout.read().splitlines()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if cli.stdout is not None:
            cli.stdout.close()
    assert any("stopped" in line for line in output), output
    assert not any(pid_alive(pid) for pid in pids)
