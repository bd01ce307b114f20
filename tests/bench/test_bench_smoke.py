"""The benchmark harness at tiny sizes (`BENCH_SCALE=smoke`), so it cannot rot: every scenario
runs against the real stack and writes its result file and plot, and every figure is a number.
The targets themselves are not asserted here (`make bench` reports them)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "throughput",
    "burst",
    "latency",
    "utilisation",
    "memory",
    "data_scale",
    "unit_costs",
    "overload",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tail(log: Path) -> str:
    """The bench's progress lines and the end of its output (asyncio's SSL noise left out)."""
    lines = [line for line in log.read_text().splitlines() if "eof_received()" not in line]
    progress = [line for line in lines if line.startswith("bench | ")]
    return "\n".join(progress) + "\n...\n" + "\n".join(lines[-150:])


@pytest.mark.e2e
@pytest.mark.timeout(840)
def test_bench_smoke_writes_every_result(tmp_path: Path) -> None:
    out = tmp_path / "results"
    log = tmp_path / "bench.log"
    # Its own process: the bench runs its own event loop and starts the whole stack. Its output
    # goes to a file, so that a run stopped for taking too long still shows how far it got.
    with log.open("w") as sink:
        command = [sys.executable, "-m", "bench", "--out", str(out)]
        proc = subprocess.Popen(
            [*command, "--base-dir", str(tmp_path / "stack")],
            cwd=REPO,
            env={**os.environ, "BENCH_SCALE": "smoke"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            returncode = proc.wait(timeout=720)
        except subprocess.TimeoutExpired:
            # SIGINT first: the bench's own clean-up stops the stack it started.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"bench still running after 720 s:\n{_tail(log)}")
    assert returncode == 0, f"bench failed:\n{_tail(log)}"

    for name in SCENARIOS:
        result = json.loads((out / f"{name}.json").read_text())
        assert result["scenario"] == name
        assert result["scale"] == "smoke"
        assert result["machine"]["logical_cpus"] >= 1
        assert result["figures"], f"{name}: no figures"
        for figure in result["figures"]:
            measured = figure["measured"]
            assert isinstance(measured, int | float), f"{name}: {figure}"
            assert math.isfinite(measured), f"{name}: {figure}"
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, f"{name}: no PNG plot"
    summary = (out / "summary.md").read_text()
    assert all(f"| {name} |" in summary for name in SCENARIOS)
