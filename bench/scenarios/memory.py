"""memory: RSS of every process while generations flow, and its growth between two checkpoints
of generations processed (counted from this scenario's start)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

from bench.load import ApiClient, closed_loop
from bench.plot import Lines, plot
from bench.recorder import Recorder
from bench.report import Figure, ScenarioResult, Target
from bench.sampler import ProcessSampler
from bench.scenarios.common import Context, rounded
from bench.stack import SERVICES, count_rows, pipeline_spec

NAME = "memory"
MAX_RSS_MB = 150.0
MAX_GROWTH_PERCENT = 10.0


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


async def run(ctx: Context) -> ScenarioResult:
    scale = ctx.scale
    first, second = scale.memory_checkpoints
    system = await ctx.stack.system(pipeline_spec())
    earlier = await count_rows(system.database_url, "SELECT count(*) FROM api.generations")
    result = ScenarioResult(
        NAME,
        f"closed loop of {scale.memory_clients} clients until {second} generations completed; "
        f"RSS (psutil, process and children) at {first} and {second}",
    )
    trail: list[dict[str, Any]] = []
    checkpoints: dict[int, dict[str, float]] = {}
    async with Recorder(system.nats_url) as recorder, ApiClient(system.api_url, recorder) as api:
        start = time.time()
        with ProcessSampler(system.pids(), interval_s=2.0) as sampler:

            async def watch() -> None:
                told = time.monotonic()
                while True:
                    done = recorder.completed_count
                    if time.monotonic() - told >= 30:
                        told = time.monotonic()
                        rate = done / max(time.time() - start, 1e-9)
                        print(f"bench | memory: {done}/{second} at {rate:.0f}/s", file=sys.stderr)
                    rss = sampler.latest_rss()
                    trail.append({"t": time.time() - start, "processed": done, "rss_mb": rss})
                    for mark in (first, second):
                        if done >= mark and mark not in checkpoints:
                            checkpoints[mark] = rss
                    await asyncio.sleep(1.0)

            watcher = asyncio.create_task(watch())
            try:
                run_ = await closed_loop(
                    api,
                    scale.memory_clients,
                    duration_s=24 * 3600,
                    stop_after_completions=second,
                )
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            final = sampler.latest_rss()
            for mark in (first, second):
                checkpoints.setdefault(mark, final)

    peak = sampler.max_rss()
    for name in SERVICES:
        result.add(
            Figure(
                f"{name} RSS, max",
                peak.get(name, float("nan")),
                "MB",
                Target("<=", MAX_RSS_MB, "MB"),
            )
        )
    for name in SERVICES:
        before, after = checkpoints[first].get(name, 0.0), checkpoints[second].get(name, 0.0)
        growth = 100.0 * (after - before) / before if before else float("nan")
        result.add(
            Figure(
                f"{name} RSS growth {_count(first)} → {_count(second)}",
                growth,
                "%",
                Target("<", MAX_GROWTH_PERCENT, "%"),
                note=f"{before:.0f} → {after:.0f} MB",
            )
        )
    sim_before, sim_after = checkpoints[first].get("sim", 0.0), checkpoints[second].get("sim", 0.0)
    result.details = rounded(
        {
            "processed_before_this_scenario": earlier,
            "processed": recorder.completed_count,
            "duration_s": run_.duration_s,
            "rate_per_s": recorder.completed_count / max(run_.duration_s, 1e-9),
            "lost": run_.lost,
            "rss_mb_at_checkpoints": {str(k): v for k, v in checkpoints.items()},
            "max_rss_mb": peak,
            "sim_note": (
                "the sim (a test double) keeps every job in memory: "
                f"{sim_before:.0f} → {sim_after:.0f} MB; not a genbus service"
            ),
            "postgres_note": "postgres RSS sums every backend and counts shared memory repeatedly",
            "api": api.report(),
        }
    )
    names = [*SERVICES, "sim", "nats"]
    result.series = rounded(
        {
            "processed": [p["processed"] for p in trail],
            "t": [p["t"] for p in trail],
            "rss_mb": {name: [p["rss_mb"].get(name) for p in trail] for name in names},
        },
        1,
    )
    plot(
        ctx.png(NAME),
        f"memory: RSS while {second} generations are processed",
        [
            Lines(
                "RSS (MB)",
                result.series["processed"],
                result.series["rss_mb"],
                xlabel="generations processed",
                hlines={"limit": MAX_RSS_MB},
            ),
        ],
    )
    return result
