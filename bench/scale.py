"""Scenario sizes: `full` (the targets of issue 7) and `smoke` (seconds; keeps the harness alive).

`BENCH_SCALE` picks one; `BENCH_MEMORY_CHECKPOINTS` (e.g. `50000,100000`) and
`BENCH_STORED_GENERATIONS` override the two long-running sizes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scale:
    name: str
    # throughput: closed loop ramp over client counts, then a sustained run at the best one
    warmup_s: float
    ramp_clients: tuple[int, ...]
    ramp_step_s: float
    sustain_s: float
    profile_s: float  # 0: no py-spy profiles
    # latency: open loop, first at a light rate (the pipeline's own latency), then the target's
    latency_light_rate: float
    latency_light_s: float
    latency_rate: float
    latency_warmup_s: float
    latency_duration_s: float
    # utilisation
    util_accounts: int
    util_slots: int
    util_backlog: int
    util_job_s: float
    # memory: generations processed (since the system started) at which RSS is compared
    memory_checkpoints: tuple[int, int]
    memory_clients: int
    # data scale
    stored_generations: int
    queued_small: int
    queued_large: int
    query_samples: int
    # unit costs: operations measured per library and operation
    unit_cost_samples: int
    # overload: the capacity measured (closed loop), then 3x it offered (open loop)
    overload_capacity_s: float
    overload_s: float
    # burst: POSTs from many clients at once, as fast as they are accepted
    burst_posts: int
    burst_clients: int
    # Longest any one scenario may run before it is stopped and reported failed (None: no limit),
    # so a scenario that hangs names itself and the others still run.
    scenario_limit_s: float | None


FULL = Scale(
    name="full",
    warmup_s=5.0,
    ramp_clients=(16, 32, 64, 128, 256),
    ramp_step_s=8.0,
    sustain_s=30.0,
    profile_s=10.0,
    latency_light_rate=10.0,
    latency_light_s=20.0,
    latency_rate=100.0,
    latency_warmup_s=3.0,
    latency_duration_s=60.0,
    util_accounts=4,
    util_slots=3,
    util_backlog=600,
    util_job_s=2.0,
    memory_checkpoints=(50_000, 100_000),
    memory_clients=64,
    stored_generations=1_000_000,
    queued_small=1_000,
    queued_large=100_000,
    query_samples=1_000,
    unit_cost_samples=5_000,
    overload_capacity_s=15.0,
    overload_s=60.0,
    burst_posts=1_000,
    burst_clients=32,
    scenario_limit_s=None,
)

SMOKE = Scale(
    name="smoke",
    warmup_s=0.5,
    ramp_clients=(4, 16),
    ramp_step_s=1.5,
    sustain_s=2.0,
    profile_s=0.0,
    latency_light_rate=10.0,
    latency_light_s=1.0,
    latency_rate=100.0,
    latency_warmup_s=0.5,
    latency_duration_s=2.0,
    util_accounts=4,
    util_slots=3,
    util_backlog=24,
    util_job_s=0.5,
    memory_checkpoints=(150, 300),
    memory_clients=16,
    stored_generations=5_000,
    queued_small=100,
    queued_large=1_000,
    query_samples=40,
    unit_cost_samples=200,
    overload_capacity_s=3.0,
    overload_s=4.0,
    burst_posts=60,
    burst_clients=8,
    # Each takes 1-25 s on a quiet 2-core machine.
    scenario_limit_s=120.0,
)

SCALES = {s.name: s for s in (FULL, SMOKE)}


def scale_from_env(name: str | None = None) -> Scale:
    """The scale named `name` (default `$BENCH_SCALE`, else full) with env overrides applied."""
    chosen = name or os.environ.get("BENCH_SCALE") or "full"
    if chosen not in SCALES:
        raise SystemExit(f"unknown BENCH_SCALE {chosen!r}; one of {sorted(SCALES)}")
    scale = SCALES[chosen]
    checkpoints = os.environ.get("BENCH_MEMORY_CHECKPOINTS")
    if checkpoints:
        first, second = (int(x) for x in checkpoints.split(","))
        scale = replace(scale, memory_checkpoints=(first, second))
    stored = os.environ.get("BENCH_STORED_GENERATIONS")
    if stored:
        scale = replace(scale, stored_generations=int(stored))
    return scale
