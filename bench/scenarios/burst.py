"""burst: a batch of POSTs from many clients at once, as fast as the API accepts them.

`burst_posts` generations (1,000 at full scale) are posted by `burst_clients` (32) concurrent
clients, each posting its next one as soon as the previous was answered (no waiting for
completions); sim jobs have length 0 and slots are never the limit. Reported: POSTs accepted/s
(from the first POST to the last 201) and completed/s (from the first POST to the last
GenerationCompleted), CPU per generation per process over the whole burst, and, next to them,
the closed-loop sustained rate of the throughput scenario when its result is at hand.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import counters
from bench.load import ApiClient, LoadRun, closed_loop
from bench.plot import Lines, plot
from bench.recorder import Recorder, Trace
from bench.report import Figure, ScenarioResult, Target
from bench.sampler import BacklogProbe, ProcessSampler
from bench.scenarios.common import (
    Context,
    add_database_times,
    cpu_per_generation,
    other_load_figure,
    rounded,
    stage_breakdown,
    timeline,
)
from bench.stack import SERVICES, pipeline_spec
from bench.stats import summary

NAME = "burst"
ACCEPTED_TARGET_PER_S = 1000.0
COMPLETED_TARGET_PER_S = 130.0
COMPLETION_TIMEOUT_S = 120.0
CPU_MS_TARGET = 12.0


async def post_burst(api: ApiClient, total: int, clients: int) -> LoadRun:
    """`clients` concurrent clients POST `total` generations between them, back to back."""
    run = LoadRun(started_at=time.time())
    left = total

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            generation_id = await api.create()
            if generation_id is not None:
                run.generation_ids.append(generation_id)

    await asyncio.gather(*(client() for _ in range(clients)))
    run.ended_at = time.time()
    return run


def sustained_rate(out_dir: Path) -> float | None:
    """The throughput scenario's sustained closed-loop rate stored beside this result."""
    path = out_dir / "throughput.json"
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for figure in body.get("figures", []):
        if figure.get("name") == "sustained generations/s":
            value = figure.get("measured")
            return float(value) if value is not None else None
    return None


@dataclass
class _Burst:
    """What one burst did."""

    run: LoadRun
    traces: list[Trace]
    recorder: Recorder
    sampler: ProcessSampler
    api: dict[str, Any]
    work: dict[str, float]
    start: float
    end: float
    done_at: float

    @property
    def accept_s(self) -> float:
        """First POST to the last 201."""
        last = max(
            (
                self.recorder.trace(g).accepted_at or self.run.ended_at
                for g in self.run.generation_ids
            ),
            default=self.run.ended_at,
        )
        return max(last - self.run.started_at, 1e-9)

    @property
    def complete_s(self) -> float:
        """First POST to the last completion."""
        return max(self.done_at - self.run.started_at, 1e-9)


async def _measure(ctx: Context, system: Any) -> _Burst:
    scale = ctx.scale
    async with (
        Recorder(system.nats_url) as recorder,
        ApiClient(system.api_url, recorder, connections=scale.burst_clients) as api,
        BacklogProbe(system.nats_url, system.database_url) as backlog,
    ):
        await backlog.wait_drained(300.0)  # whatever an earlier scenario left in flight
        await closed_loop(api, 4, scale.warmup_s)  # connections open, caches warm
        await backlog.wait_drained(60.0)
        monitor = system.infra.nats.monitor_url if system.infra.nats is not None else None
        counted_from = await counters.snapshot(system.database_url, monitor)
        start = time.time()
        with ProcessSampler(system.pids(), interval_s=0.25) as sampler:
            burst = await post_burst(api, scale.burst_posts, scale.burst_clients)
            traces = [
                trace
                for gid in burst.generation_ids
                if (trace := await recorder.completion(gid, COMPLETION_TIMEOUT_S)) is not None
            ]
            done_at = max((t.completed_at or 0.0 for t in traces), default=time.time())
        end = time.time()
        counted_to = await counters.snapshot(system.database_url, monitor)
    work = counters.per_generation(counted_from, counted_to, len(traces))
    return _Burst(burst, traces, recorder, sampler, api.report(), work, start, end, done_at)


async def run(ctx: Context) -> ScenarioResult:
    scale = ctx.scale
    system = await ctx.stack.system(pipeline_spec())
    result = ScenarioResult(
        NAME,
        f"{scale.burst_posts} POSTs from {scale.burst_clients} clients as fast as they are "
        "accepted, then every completion awaited; sim job length 0, slots never the limit",
    )
    b = await _measure(ctx, system)
    await add_database_times(system.database_url, b.traces)
    sustained = sustained_rate(ctx.out_dir)
    _rate_figures(result, b, scale.burst_clients, sustained)
    whole = b.sampler.mean_cpu(b.start, b.end)
    cpu_ms, stack_ms = cpu_per_generation(whole, b.end - b.start, len(b.traces))
    top = sorted(((k, v) for k, v in cpu_ms.items() if k in (*SERVICES, "postgres")), key=_neg)
    result.add(
        Figure(
            "CPU per generation, whole stack",
            stack_ms,
            "ms",
            Target("<=", CPU_MS_TARGET, "ms"),
            note=", ".join(f"{k} {v:.1f}" for k, v in top),
        )
    )
    result.add(other_load_figure(whole))
    latencies = [lat for t in b.traces if (lat := t.latency()) is not None]
    result.details = rounded(
        {
            "posts": scale.burst_posts,
            "clients": scale.burst_clients,
            "accepted": len(b.run.generation_ids),
            "completed": len(b.traces),
            "accept_window_s": b.accept_s,
            "complete_window_s": b.complete_s,
            "sustained_closed_loop_per_s": sustained,
            "post_to_completed_ms": summary(latencies, 1000.0),
            "post_to_201_ms": summary(
                [t.accepted_at - t.post_at for t in b.traces if t.accepted_at and t.post_at],
                1000.0,
            ),
            "stages_ms": stage_breakdown(b.traces),
            "mean_cpu_percent_of_one_core": whole,
            "cpu_ms_per_generation": cpu_ms,
            "stack_cpu_ms_per_generation": stack_ms,
            "max_rss_mb": b.sampler.max_rss(),
            "work_per_generation": b.work,
            "api": b.api,
        }
    )
    series = timeline(list(b.recorder.traces.values()), b.start, b.end)
    series["processes"] = b.sampler.series(b.start)
    result.series = rounded(series, 2)
    accepted = len(b.run.generation_ids)
    _plot(ctx, series, accepted / b.accept_s, len(b.traces) / b.complete_s)
    return result


def _rate_figures(result: ScenarioResult, b: _Burst, clients: int, sustained: float | None) -> None:
    accepted = len(b.run.generation_ids)
    result.add(
        Figure(
            "POSTs accepted/s",
            accepted / b.accept_s,
            "/s",
            Target(">=", ACCEPTED_TARGET_PER_S, "/s"),
            note=f"{accepted} accepted in {b.accept_s:.2f} s, {clients} clients",
        )
    )
    beside = f"; closed-loop sustained {sustained:.1f}/s" if sustained is not None else ""
    result.add(
        Figure(
            "completed/s",
            len(b.traces) / b.complete_s,
            "/s",
            Target(">=", COMPLETED_TARGET_PER_S, "/s"),
            note=f"{len(b.traces)} completed {b.complete_s:.2f} s after the first POST{beside}",
        )
    )
    if len(b.traces) < accepted:
        result.add(
            Figure(
                f"accepted generations not completed within {COMPLETION_TIMEOUT_S:g} s",
                accepted - len(b.traces),
                "",
                Target("==", 0),
            )
        )


def _neg(item: tuple[str, float]) -> float:
    return -item[1]


def _plot(ctx: Context, series: dict[str, Any], accepted: float, completed: float) -> None:
    processes = series["processes"]
    plot(
        ctx.png(NAME),
        f"burst: accepted {accepted:.0f}/s, completed {completed:.0f}/s",
        [
            Lines(
                "generations/s",
                series["t"],
                {"POSTs/s": series["posts_per_s"], "completed/s": series["completions_per_s"]},
                hlines={"intake target": ACCEPTED_TARGET_PER_S},
            ),
            Lines("POST → completed (ms)", series["t"], series["latency_ms"], logy=True),
            Lines(
                "CPU (% of one core)",
                processes["t"],
                {
                    name: values
                    for name, values in processes["cpu_percent"].items()
                    if name in (*SERVICES, "sim", "nats", "postgres", "bench")
                },
            ),
        ],
    )
