"""What every scenario gets (`Context`), and the timeline arithmetic they share."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.recorder import Trace
from bench.report import Figure
from bench.sampler import MACHINE_CPU, OTHER_CPU
from bench.scale import Scale
from bench.stack import BenchStack
from bench.stats import percentile_series, rate_series, summary


@dataclass
class Context:
    stack: BenchStack
    scale: Scale
    out_dir: Path
    profile: bool = True

    def png(self, name: str) -> Path:
        return self.out_dir / f"{name}.png"


#: Stages of a generation, as (label, from field, to field) of `Trace`.
STAGES = (
    ("POST → 201 response", "post_at", "accepted_at"),
    ("POST → requested (API commit)", "post_at", "requested_at"),
    ("requested → queued by the dispatcher", "requested_at", "ingested_at"),
    ("queued → submitted (claim, provider submit)", "ingested_at", "submitted_at"),
    ("submitted → provider done seen (poller)", "submitted_at", "provider_done_at"),
    ("provider done → completed at bench", "provider_done_at", "completed_at"),
    ("provider done → API row terminal", "provider_done_at", "api_done_at"),
    ("POST → completed at bench", "post_at", "completed_at"),
    ("POST → API row terminal", "post_at", "api_done_at"),
)
_TERMINAL = ("completed", "failed", "cancelled")


async def add_database_times(database_url: str, traces: list[Trace], chunk: int = 5000) -> None:
    """Fill `ingested_at` and `api_done_at` of `traces` from the dispatcher's and API's tables."""
    by_id = {uuid.UUID(t.generation_id): t for t in traces}
    ids = list(by_id)
    conn = await asyncpg.connect(database_url)
    try:
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            for row in await conn.fetch(
                "SELECT generation_id, created_at FROM dispatcher.dispatch_jobs "
                "WHERE generation_id = ANY($1::uuid[])",
                part,
            ):
                by_id[row["generation_id"]].ingested_at = row["created_at"].timestamp()
            for row in await conn.fetch(
                "SELECT id, updated_at FROM api.generations "
                "WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[])",
                part,
                list(_TERMINAL),
            ):
                by_id[row["id"]].api_done_at = row["updated_at"].timestamp()
    finally:
        await conn.close()


def stage_breakdown(traces: Iterable[Trace]) -> dict[str, dict[str, float]]:
    """Per stage: count, mean, p50, p90, p99, max in milliseconds."""
    values: dict[str, list[float]] = {label: [] for label, _, _ in STAGES}
    for trace in traces:
        for label, start, end in STAGES:
            a, b = getattr(trace, start), getattr(trace, end)
            if a is not None and b is not None:
                values[label].append(b - a)
    return {label: summary(v, 1000.0) for label, v in values.items()}


def other_load_figure(cpu: dict[str, float]) -> Figure:
    """How much CPU processes outside the stack and the bench took meanwhile (the machine is not
    ours alone: read every figure of the scenario with this one)."""
    return Figure(
        "CPU taken by other processes meanwhile",
        cpu.get(OTHER_CPU, float("nan")),
        "% of a core",
        note=f"machine busy {cpu.get(MACHINE_CPU, float('nan')):.0f}% of all cores",
    )


def cpu_per_generation(
    mean_cpu: dict[str, float], duration_s: float, generations: int
) -> tuple[dict[str, float], float]:
    """CPU milliseconds each process spent per generation over a phase of `duration_s` in
    which `generations` went through (from `ProcessSampler.mean_cpu` over that phase), and
    their sum over the stack (the bench and other processes left out). Independent of how
    busy the machine is: it says how many generations/s a core can carry."""
    if generations <= 0:
        return {}, float("nan")
    per = {
        name: value / 100.0 * duration_s * 1000.0 / generations
        for name, value in mean_cpu.items()
        if not name.startswith("machine")
    }
    stack = sum(v for k, v in per.items() if k != "bench" and not k.startswith("other"))
    return per, stack


def completed(traces: Iterable[Trace], since: float, until: float) -> list[Trace]:
    """Traces whose completion arrived in [since, until)."""
    return [t for t in traces if t.completed_at is not None and since <= t.completed_at < until]


def timeline(traces: list[Trace], start: float, end: float) -> dict[str, Any]:
    """Per-second series: POSTs/s, completions/s, latency percentiles (by completion time)."""
    posts = [t.post_at for t in traces if t.post_at is not None]
    done = [t.completed_at for t in traces if t.completed_at is not None]
    points = [
        (t.completed_at, lat)
        for t in traces
        if t.completed_at is not None and (lat := t.latency()) is not None
    ]
    bins = rate_series(done, start, end)
    return {
        "t": list(range(len(bins))),
        "posts_per_s": rate_series(posts, start, end),
        "completions_per_s": bins,
        "latency_ms": percentile_series(points, start, end, scale=1000.0),
    }


def rounded(value: Any, digits: int = 3) -> Any:
    """Floats rounded, recursively (keeps the result files readable)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value
