"""Nothing lost, nothing done twice, nothing stuck: SIGKILL every part while generations flow.

Size: GENBUS_FAULTS_GENERATIONS (default 300; `make faults` runs 1500).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from genbus.devstack.system import AccountSeed
from tests.faults.harness import GENERATIONS, FaultRun, audit, p99
from tests.figures import report

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

ACCOUNTS = (
    AccountSeed("sim-a", "sim-key-1", max_concurrent=3),
    AccountSeed("sim-b", "sim-key-2", max_concurrent=3),
)
ONE_AT_A_TIME = ["api", "dispatcher", "poller", "nats", "postgres"]


async def _audit(run: FaultRun) -> None:
    found = await audit(run)
    stats = found.stats
    report(
        "\nFAULT RUN: "
        f"generations={len(found.rows)} accepted={len(run.accepted)} kills={len(run.kills)} "
        f"({', '.join(run.kills)}) lost={len(found.lost)} stuck={sum(found.stuck.values())} "
        f"duplicates={stats['duplicate_references']} "
        f"violations={stats['concurrency_violations']} leaked_slots={found.slots} "
        f"conflicting_outcomes={len(found.conflicting)} dead_letters={found.dead} "
        f"post_retries={run.post_failures} statuses={found.counts} "
        f"recovery_p99_s={p99(run.recovery_s):.2f} "
        f"recovery_s={dict(zip(run.kills, (round(r, 2) for r in run.recovery_s), strict=True))} "
        f"submissions={stats['submissions']} replays={stats['idempotent_replays']}"
    )
    found.assert_sound()


async def test_sigkill_each_part_then_all_together(tmp_path: Path) -> None:
    run = FaultRun(tmp_path, replicas={"api": 1, "dispatcher": 1, "poller": 1}, accounts=ACCOUNTS)
    await asyncio.to_thread(run.start)
    try:
        load = asyncio.create_task(run.post_load(GENERATIONS, duration_s=GENERATIONS / 12))
        for name in ONE_AT_A_TIME:
            await asyncio.sleep(1.0)  # let work build up between faults
            await run.kill_and_restart([name])
        await run.kill_and_restart(ONE_AT_A_TIME)
        await load
        assert len(run.accepted) >= GENERATIONS
        await _audit(run)
    finally:
        await asyncio.to_thread(run.stop)


async def test_two_dispatchers_and_two_pollers_share_the_work(tmp_path: Path) -> None:
    run = FaultRun(tmp_path, replicas={"api": 1, "dispatcher": 2, "poller": 2}, accounts=ACCOUNTS)
    await asyncio.to_thread(run.start)
    try:
        count = max(GENERATIONS // 2, 100)
        load = asyncio.create_task(run.post_load(count, duration_s=count / 15))
        await asyncio.sleep(2.0)
        await run.kill_and_restart(["dispatcher-2", "poller"])
        await load
        await _audit(run)
        submitted_by = {
            name: (run.base / "run" / "logs" / f"{name}.log").read_text().count('"submitted"')
            for name in ("dispatcher", "dispatcher-2")
        }
        report(f"submissions per dispatcher replica: {submitted_by}")
        assert all(n > 0 for n in submitted_by.values()), submitted_by
    finally:
        await asyncio.to_thread(run.stop)


async def test_sigterm_is_a_graceful_shutdown(tmp_path: Path) -> None:
    """SIGTERM each service mid-flow: it finishes or hands back its work and exits cleanly."""
    run = FaultRun(tmp_path, replicas={"api": 1, "dispatcher": 1, "poller": 1}, accounts=ACCOUNTS)
    await asyncio.to_thread(run.start)
    try:
        count = max(GENERATIONS // 3, 60)
        load = asyncio.create_task(run.post_load(count, duration_s=count / 12))
        exit_codes = {}
        for name in ("dispatcher", "poller", "api"):
            await asyncio.sleep(1.0)
            process = run.system.processes[name]
            await asyncio.to_thread(process.stop, 20.0)
            exit_codes[name] = process.returncode
            await asyncio.to_thread(process.start)
        await load
        report(f"exit codes after SIGTERM: {exit_codes}")
        # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
        assert exit_codes == {"dispatcher": 0, "poller": 0, "api": exit_codes["api"]}
        assert exit_codes["api"] in (0, -15)
        await _audit(run)
    finally:
        await asyncio.to_thread(run.stop)
