"""overload: 3x the measured capacity offered for a while; admission control keeps what it
accepts fast and refuses the rest at once.

The provider is the bottleneck, as in production: ACCOUNTS x SLOTS slots of JOB_S jobs (the
sim enforces the concurrency). Capacity is measured first (a closed loop of twice as many
clients as slots), then an open loop offers three times it. The admission bound on pending
generations is QUEUE_S seconds of that capacity, so an accepted generation waits at most about
QUEUE_S for a slot: POST -> completed p99 stays under QUEUE_S + JOB_S + the pipeline's own
delays (stated as P99_BOUND_S), the excess gets 429 `overloaded` with Retry-After, the backlog
stops growing at the bound, and every accepted generation completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg

from bench.load import ApiClient, closed_loop, open_loop
from bench.plot import Lines, plot
from bench.recorder import Recorder
from bench.report import Figure, ScenarioResult, Target
from bench.sampler import ProcessSampler
from bench.scenarios.common import Context, completed, other_load_figure, rounded, timeline
from bench.stack import SystemSpec, sim_accounts
from bench.stats import summary

NAME = "overload"
ACCOUNTS = 4
SLOTS = 6
JOB_S = 1.0
#: Capacity the slots allow (jobs/s); the admission bound is QUEUE_S seconds of it.
DESIGN_CAPACITY = ACCOUNTS * SLOTS / JOB_S
QUEUE_S = 5.0
MAX_PENDING = int(DESIGN_CAPACITY * QUEUE_S)
#: The stated bound on accepted generations' POST -> completed p99.
P99_BOUND_S = QUEUE_S + JOB_S + 4.0
OVERLOAD_FACTOR = 3.0


def overload_spec() -> SystemSpec:
    return SystemSpec(
        "overload",
        sim_accounts(ACCOUNTS, SLOTS),
        {
            "SIM_DURATION_S": str(JOB_S),
            "SIM_DURATION_JITTER_S": "0",
            "SIM_PER_KEY_CONCURRENCY": str(SLOTS),
        },
        env={"GENBUS_API_MAX_PENDING_GENERATIONS": str(MAX_PENDING)},
    )


async def _sample_backlog(
    database_url: str, samples: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    """Pending generations (accepted, not yet submitted), once a second."""
    conn = await asyncpg.connect(database_url)
    try:
        while not stop.is_set():
            pending = await conn.fetchval(
                "SELECT count(*) FROM api.generations WHERE status = 'pending'"
            )
            samples.append((time.time(), int(pending)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await conn.close()


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else float("nan")


async def run(ctx: Context) -> ScenarioResult:
    scale = ctx.scale
    system = await ctx.stack.system(overload_spec())
    result = ScenarioResult(
        NAME,
        f"{OVERLOAD_FACTOR:g}x the measured capacity for {scale.overload_s:g} s; "
        f"{ACCOUNTS}x{SLOTS} slots of {JOB_S:g} s jobs, admission bound {MAX_PENDING} pending",
    )
    samples: list[tuple[float, int]] = []
    async with Recorder(system.nats_url) as recorder, ApiClient(system.api_url, recorder) as api:
        start = time.time()
        with ProcessSampler(system.pids()) as sampler:
            probe = await closed_loop(api, 2 * ACCOUNTS * SLOTS, scale.overload_capacity_s)
            # The first third warms up; capacity is what completed in the rest.
            since = probe.started_at + scale.overload_capacity_s / 3
            done = completed(recorder.traces.values(), since, probe.ended_at)
            capacity = len(done) / max(probe.ended_at - since, 1e-9)
            await asyncio.gather(*(recorder.completion(g, 30.0) for g in probe.generation_ids))
            accepted_before = sum(api.status_codes.values())
            codes_before = dict(api.status_codes)
            errors_before = sum(api.errors.values())

            stop = asyncio.Event()
            sampling = asyncio.create_task(_sample_backlog(system.database_url, samples, stop))
            offered_rate = OVERLOAD_FACTOR * max(capacity, 1.0)
            measured = await open_loop(api, offered_rate, scale.overload_s)
            # Every accepted generation must complete: wait for the backlog to drain.
            traces = [
                trace
                for gid in measured.generation_ids
                if (trace := await recorder.completion(gid, 60.0 + QUEUE_S)) is not None
            ]
            stop.set()
            await sampling
        end = time.time()

    answers = sum(api.status_codes.values()) - accepted_before
    codes = {k: v - codes_before.get(k, 0) for k, v in api.status_codes.items()}
    refused = sum(n for code, n in codes.items() if code in (429, 503))
    accepted = len(measured.generation_ids)
    latencies = [lat for t in traces if (lat := t.latency()) is not None]
    overall = summary(latencies)
    window = [n for at, n in samples if measured.started_at <= at <= measured.ended_at]
    tail = max(3, len(window) // 4)
    middle = window[len(window) // 2 - tail // 2 : len(window) // 2 - tail // 2 + tail]
    growth = _mean(window[-tail:]) - _mean(middle)

    note = f"{offered_rate:.0f}/s offered, capacity {capacity:.1f}/s"
    result.add(
        Figure("capacity (closed loop)", capacity, "/s", note=f"{DESIGN_CAPACITY:g}/s by design")
    )
    posting_s = max(measured.duration_s, 1e-9)
    result.add(
        Figure("offered (scheduled)", offered_rate, "/s", note=f"for {scale.overload_s:g} s")
    )
    result.add(
        Figure(
            "POSTs answered",
            answers / posting_s,
            "/s",
            note=f"over the {posting_s:.0f} s until the last answer; {note}",
        )
    )
    result.add(Figure("accepted", accepted / posting_s, "/s", note=note))
    result.add(
        Figure(
            "POSTs the load generator could not deliver",
            sum(api.errors.values()) - errors_before,
            "",
            note="its own connection pool or connect timeouts: the offered load was not all "
            "delivered",
        )
    )
    result.add(
        Figure(
            "accepted POST → completed p99",
            overall.get("p99", float("nan")),
            "s",
            Target("<=", P99_BOUND_S, "s"),
            note=f"admission bound {MAX_PENDING} pending = {QUEUE_S:g} s of capacity",
        )
    )
    result.add(
        Figure(
            "excess refused (429/503)",
            100.0 * refused / max(answers, 1),
            "%",
            Target(">=", 50, "%"),
            note=f"ideal at {OVERLOAD_FACTOR:g}x: {100 * (1 - 1 / OVERLOAD_FACTOR):.0f}%",
        )
    )
    result.add(
        Figure(
            "refusals without Retry-After",
            api.throttled_without_retry_after,
            "",
            Target("==", 0),
        )
    )
    result.add(
        Figure(
            "backlog growth, last quarter vs middle",
            growth,
            "pending",
            Target("<=", 0.1 * MAX_PENDING),
            note=f"backlog at the end {window[-1] if window else 0} (bound {MAX_PENDING})",
        )
    )
    result.add(
        Figure("accepted generations not completed", accepted - len(latencies), "", Target("==", 0))
    )
    result.add(other_load_figure(sampler.mean_cpu(measured.started_at, measured.ended_at)))
    result.details = rounded(
        {
            "design_capacity_per_s": DESIGN_CAPACITY,
            "measured_capacity_per_s": capacity,
            "offered_rate_per_s": offered_rate,
            "max_pending_generations": MAX_PENDING,
            "p99_bound_s": P99_BOUND_S,
            "status_codes": {str(k): v for k, v in sorted(codes.items())},
            "accepted": accepted,
            "completed": len(latencies),
            "post_to_completed_s": overall,
            "max_schedule_lag_s": measured.max_schedule_lag_s,
            "backlog_samples": window,
            "api": api.report(),
        }
    )
    series = timeline(list(recorder.traces.values()), start, end)
    series["backlog"] = [n for _, n in samples]
    result.series = rounded(series, 2)
    load_from = measured.started_at - start
    plot(
        ctx.png(NAME),
        f"overload: {OVERLOAD_FACTOR:g}x capacity offered",
        [
            Lines(
                "generations/s (accepted POSTs, completions)",
                series["t"],
                {"accepted/s": series["posts_per_s"], "completed/s": series["completions_per_s"]},
                spans=[(load_from, measured.ended_at - start, f"{offered_rate:.0f}/s offered")],
            ),
            Lines(
                "pending backlog",
                [at - start for at, _ in samples],
                {"pending": series["backlog"]},
                hlines={"admission bound": MAX_PENDING},
            ),
            Lines(
                "POST → completed (ms)",
                series["t"],
                series["latency_ms"],
                logy=True,
                hlines={"p99 bound": P99_BOUND_S * 1000},
            ),
        ],
    )
    return result
