"""utilisation: how busy genbus keeps every provider slot with a backlog queued.

A backlog is posted at once onto few accounts x slots with fixed-length sim jobs. The sim does not
expose its jobs' end times, so a job's provider-side end is estimated as its GenerationSubmitted
`occurred_at` + the job length: the provider started the job a little before (by the submit
response and one UPDATE, a few ms), so the estimate is late by that much and the gaps below are
short by that much.

Per account, with S slots, the k-th slot freeing (by time) is taken by the (k+S)-th submission:
gap = that submission - that freeing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from typing import Any

import httpx

from bench.load import ApiClient
from bench.plot import Boxes, Lines, plot
from bench.recorder import Recorder
from bench.report import Figure, ScenarioResult, Target
from bench.sampler import ProcessSampler
from bench.scenarios.common import Context, other_load_figure, rounded, stage_breakdown
from bench.stack import slots_spec
from bench.stats import summary

NAME = "utilisation"
_POSTERS = 32


def _pair_gaps(submits: list[float], frees: list[float], slots: int) -> list[float]:
    submits, frees = sorted(submits), sorted(frees)
    return [submits[k + slots] - frees[k] for k in range(max(0, len(submits) - slots))]


def _busy_series(
    intervals: list[tuple[float, float]], start: float, end: float, step: float = 0.1
) -> list[int]:
    """How many intervals cover each `step` from `start` to `end`."""
    bins = max(1, math.ceil((end - start) / step))
    delta = [0] * (bins + 1)
    for a, b in intervals:
        i = max(0, int((a - start) / step))
        j = min(bins, max(i, int((b - start) / step)))
        delta[i] += 1
        delta[j] -= 1
    series, running = [], 0
    for value in delta[:bins]:
        running += value
        series.append(running)
    return series


async def run(ctx: Context) -> ScenarioResult:
    scale = ctx.scale
    accounts, slots, job_s = scale.util_accounts, scale.util_slots, scale.util_job_s
    capacity = accounts * slots
    system = await ctx.stack.system(slots_spec(accounts, slots, job_s))
    result = ScenarioResult(
        NAME,
        f"{scale.util_backlog} generations posted at once onto {accounts} accounts x {slots} "
        f"slots, sim jobs of {job_s:g} s (no jitter)",
    )
    async with Recorder(system.nats_url) as recorder, ApiClient(system.api_url, recorder) as api:
        start = time.time()
        with ProcessSampler(system.pids(), interval_s=2.0) as sampler:
            gate = asyncio.Semaphore(_POSTERS)

            async def post() -> str | None:
                async with gate:
                    return await api.create()

            posted = await asyncio.gather(*(post() for _ in range(scale.util_backlog)))
            ids = [gid for gid in posted if gid is not None]
            posted_at = time.time()
            timeout = scale.util_backlog / capacity * (3 * job_s + 5) + 60
            await asyncio.gather(*(recorder.completion(gid, timeout) for gid in ids))
    async with httpx.AsyncClient(base_url=system.system.sim_url) as sim:
        sim_stats: dict[str, Any] = (await sim.get("/_sim/stats")).json()

    wanted = set(ids)
    traces = [recorder.trace(gid) for gid in ids]
    submits: dict[str, list[float]] = defaultdict(list)
    for submission in recorder.submissions:
        if submission.generation_id in wanted:
            submits[submission.account_id].append(submission.at)
    seen_done: dict[str, list[float]] = defaultdict(list)
    for trace in traces:
        if trace.account_id is not None and trace.provider_done_at is not None:
            seen_done[trace.account_id].append(trace.provider_done_at)

    gaps: list[float] = []
    after_seen: list[float] = []
    for account, times in submits.items():
        gaps += _pair_gaps(times, [t + job_s for t in times], slots)
        after_seen += _pair_gaps(times, seen_done[account], slots)
    detection = [
        t.provider_done_at - (t.submitted_at + job_s)
        for t in traces
        if t.provider_done_at is not None and t.submitted_at is not None
    ]
    all_submits = sorted(t for times in submits.values() for t in times)
    jobs = len(all_submits)
    if all_submits:
        first, last_end = all_submits[0], all_submits[-1] + job_s
        makespan = last_end - first
    else:
        first, last_end, makespan = start, start, float("nan")
    utilisation = 100.0 * jobs * job_s / (capacity * makespan) if jobs else float("nan")
    gap_ms = summary(gaps, 1000.0)
    not_done = sum(1 for t in traces if t.completed_at is None)

    result.add(
        Figure(
            "slot utilisation over the makespan",
            utilisation,
            "%",
            Target(">=", 98, "%"),
            note=f"{jobs} jobs x {job_s:g} s / ({capacity} slots x {makespan:.1f} s)",
        )
    )
    result.add(
        Figure(
            "slot freed → next submission on it, p99",
            gap_ms.get("p99", float("nan")),
            "ms",
            Target("<=", 50, "ms"),
        )
    )
    result.add(Figure("slot freed → next submission, p50", gap_ms.get("p50", float("nan")), "ms"))
    result.add(
        Figure("provider concurrency violations", sim_stats.get("concurrency_violations", -1))
    )
    result.add(other_load_figure(sampler.mean_cpu()))
    if not_done or len(ids) < scale.util_backlog:
        result.add(
            Figure(
                "generations not posted or not completed",
                scale.util_backlog - len(ids) + not_done,
                "",
                Target("==", 0),
            )
        )
    result.details = rounded(
        {
            "accounts": accounts,
            "slots_per_account": slots,
            "job_s": job_s,
            "backlog": scale.util_backlog,
            "posted": len(ids),
            "posting_took_s": posted_at - start,
            "jobs_submitted": jobs,
            "resubmissions": jobs - len({s.generation_id for s in recorder.submissions}),
            "makespan_s": makespan,
            "ideal_makespan_s": math.ceil(jobs / capacity) * job_s if jobs else None,
            "gap_slot_freed_to_next_submission_ms": gap_ms,
            "gap_end_seen_by_poller_to_next_submission_ms": summary(after_seen, 1000.0),
            "poller_detection_delay_ms": summary(detection, 1000.0),
            "stages_ms": stage_breakdown(traces),
            "sim_stats": {
                k: sim_stats.get(k)
                for k in (
                    "submissions",
                    "idempotent_replays",
                    "duplicate_references",
                    "concurrency_violations",
                    "max_concurrent_seen",
                    "status_requests",
                    "rejections",
                )
            },
            "status_requests_per_job": sim_stats.get("status_requests", 0) / max(jobs, 1),
            "mean_cpu_percent_of_one_core": sampler.mean_cpu(),
            "provider_done": "estimated: GenerationSubmitted occurred_at + job length",
            "api": api.report(),
        }
    )
    provider_busy = _busy_series([(t, t + job_s) for t in all_submits], first, last_end)
    held: list[tuple[float, float]] = [
        (t.submitted_at, t.provider_done_at)
        for t in traces
        if t.submitted_at is not None and t.provider_done_at is not None
    ]
    genbus_held = _busy_series(held, first, last_end)
    x = [round(i * 0.1, 1) for i in range(len(provider_busy))]
    result.series = rounded(
        {
            "t": x,
            "provider_busy_slots": provider_busy,
            "slots_held_until_poller_saw_end": genbus_held,
            "gaps_ms": sorted(g * 1000 for g in gaps),
        },
        1,
    )
    plot(
        ctx.png(NAME),
        f"utilisation: {utilisation:.1f}% of {capacity} slots, {jobs} jobs of {job_s:g} s",
        [
            Lines(
                "busy slots",
                x,
                {
                    "provider busy (estimated)": provider_busy,
                    "held until the poller saw the end": genbus_held,
                },
                xlabel="seconds since the first submission",
                hlines={"capacity": capacity},
                step=True,
            ),
            Boxes(
                "ms",
                {
                    "slot freed → next submission": [g * 1000 for g in gaps],
                    "job end → poller saw it": [d * 1000 for d in detection],
                    "poller saw end → next submission": [g * 1000 for g in after_seen],
                },
                hlines={"p99 target (gap)": 50},
            ),
        ],
    )
    return result
