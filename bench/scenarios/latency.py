"""latency: POST → completed at a steady offered load (open loop), sim jobs of length 0."""

from __future__ import annotations

import asyncio
import time

from bench.load import ApiClient, open_loop
from bench.plot import Lines, plot
from bench.recorder import Recorder, Trace
from bench.report import Figure, ScenarioResult, Target
from bench.sampler import ProcessSampler
from bench.scenarios.common import (
    Context,
    add_database_times,
    other_load_figure,
    rounded,
    stage_breakdown,
    timeline,
)
from bench.stack import pipeline_spec
from bench.stats import summary

NAME = "latency"


async def _completed(recorder: Recorder, ids: list[str], timeout_s: float = 30.0) -> list[Trace]:
    """The traces of `ids`, once each completed or `timeout_s` passed."""
    await asyncio.gather(*(recorder.completion(gid, timeout_s) for gid in ids))
    return [recorder.trace(gid) for gid in ids]


async def run(ctx: Context) -> ScenarioResult:
    scale = ctx.scale
    system = await ctx.stack.system(pipeline_spec())
    result = ScenarioResult(
        NAME,
        f"open loop at {scale.latency_rate:g}/s for {scale.latency_duration_s:g} s "
        f"(after {scale.latency_light_s:g} s at {scale.latency_light_rate:g}/s and "
        f"{scale.latency_warmup_s:g} s warm-up); sim job length 0",
    )
    async with Recorder(system.nats_url) as recorder, ApiClient(system.api_url, recorder) as api:
        start = time.time()
        with ProcessSampler(system.pids()) as sampler:
            light = await open_loop(api, scale.latency_light_rate, scale.latency_light_s)
            light_traces = await _completed(recorder, light.generation_ids)
            warm_from = time.time()
            await open_loop(api, scale.latency_rate, scale.latency_warmup_s)
            measured = await open_loop(api, scale.latency_rate, scale.latency_duration_s)
            traces = await _completed(recorder, measured.generation_ids)
        end = time.time()
    await add_database_times(system.database_url, traces + light_traces)
    light_ms = summary([lat for t in light_traces if (lat := t.latency()) is not None], 1000.0)

    latencies = [lat for t in traces if (lat := t.latency()) is not None]
    overall = summary(latencies, 1000.0)
    lost = len(traces) - len(latencies)
    offered = len(measured.generation_ids) / max(measured.duration_s, 1e-9)
    result.add(
        Figure(
            "POST → completed p50",
            overall.get("p50", float("nan")),
            "ms",
            Target("<=", 30, "ms"),
            note=f"{scale.latency_rate:g}/s offered",
        )
    )
    result.add(
        Figure(
            "POST → completed p99",
            overall.get("p99", float("nan")),
            "ms",
            Target("<=", 150, "ms"),
            note=f"{scale.latency_rate:g}/s offered",
        )
    )
    for q, target in (("p50", Target("<=", 30, "ms")), ("p99", None)):
        result.add(
            Figure(
                f"POST → completed {q}, light load",
                light_ms.get(q, float("nan")),
                "ms",
                target,
                note=f"{scale.latency_light_rate:g}/s offered: the pipeline's own latency",
            )
        )
    result.add(
        Figure(
            "POSTs accepted/s",
            offered,
            "/s",
            note=f"{scale.latency_rate:g}/s offered",
        )
    )
    if lost:
        result.add(Figure("generations not completed within 30 s", lost, "", Target("==", 0)))
    window = (measured.started_at, measured.ended_at)
    result.add(other_load_figure(sampler.mean_cpu(*window)))
    result.details = rounded(
        {
            "offered_rate_per_s": scale.latency_rate,
            "achieved_post_rate_per_s": offered,
            "max_schedule_lag_s": measured.max_schedule_lag_s,
            "generations": len(traces),
            "not_completed": lost,
            "duplicate_completions": recorder.duplicates,
            "stages_ms": stage_breakdown(traces),
            "light_load": {
                "rate_per_s": scale.latency_light_rate,
                "generations": len(light_traces),
                "stages_ms": stage_breakdown(light_traces),
            },
            "mean_cpu_percent_of_one_core": sampler.mean_cpu(*window),
            "max_rss_mb": sampler.max_rss(),
            "api": api.report(),
            "provider_done": "occurred_at of GenerationCompleted (the poller saw the job end)",
        }
    )
    series = timeline(list(recorder.traces.values()), start, end)
    series["processes"] = sampler.series(start)
    result.series = rounded(series, 2)
    phases = [
        (0.0, warm_from - start, f"{scale.latency_light_rate:g}/s"),
        (warm_from - start, measured.started_at - start, "warm-up"),
    ]
    plot(
        ctx.png(NAME),
        f"latency: open loop {scale.latency_rate:g}/s",
        [
            Lines(
                "generations/s",
                series["t"],
                {"POSTs/s": series["posts_per_s"], "completed/s": series["completions_per_s"]},
                spans=phases,
            ),
            Lines(
                "POST → completed (ms)",
                series["t"],
                series["latency_ms"],
                logy=True,
                hlines={"p50 target": 30, "p99 target": 150},
                spans=phases,
            ),
        ],
    )
    return result
