"""The benchmark harness at tiny sizes (`BENCH_SCALE=smoke`), so it cannot rot: every scenario
runs against the real stack and writes its result file and plot, and every figure is a number.
The targets themselves are not asserted here (`make bench` reports them)."""

from __future__ import annotations

import json
import math
import os
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


@pytest.mark.e2e
@pytest.mark.timeout(780)
def test_bench_smoke_writes_every_result(tmp_path: Path) -> None:
    out = tmp_path / "results"
    # Its own process: the bench runs its own event loop and starts the whole stack.
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--out", str(out), "--base-dir", str(tmp_path / "stack")],
        cwd=REPO,
        env={**os.environ, "BENCH_SCALE": "smoke"},
        capture_output=True,
        text=True,
        timeout=720,
        check=False,
    )
    assert proc.returncode == 0, f"bench failed:\n{proc.stderr[-6000:]}"

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
