"""`python -m bench`: start the local stack, run the scenarios, write results, print the table.

python -m bench                          # full scale (BENCH_SCALE=full), all scenarios
python -m bench --scale smoke            # tiny sizes, ~1 minute
python -m bench --only latency,throughput --out /tmp/results
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bench.report import (
    Figure,
    ScenarioResult,
    clean_for_json,
    load_results,
    machine_info,
    summary_table,
    write_result,
)
from bench.scale import scale_from_env
from bench.scenarios import (
    burst,
    data_scale,
    latency,
    memory,
    overload,
    throughput,
    unit_costs,
    utilisation,
)
from bench.scenarios.common import Context
from bench.stack import BenchStack

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
README = REPO / "README.md"
README_START = "<!-- bench-summary:start -->"
README_END = "<!-- bench-summary:end -->"
Scenario = Callable[[Context], Awaitable[ScenarioResult]]

#: Table order (the issue's, then the unit costs). Run order: unit costs first, on the bare
#: infrastructure; latency before throughput pushes the stack to saturation, the burst after
#: throughput (it shows its figures beside throughput's); utilisation and overload on their own
#: accounts; then memory on a fresh pipeline system, and data scale last on that one (it stops
#: the dispatcher and fills the tables).
SCENARIOS: dict[str, Scenario] = {
    throughput.NAME: throughput.run,
    burst.NAME: burst.run,
    latency.NAME: latency.run,
    utilisation.NAME: utilisation.run,
    memory.NAME: memory.run,
    data_scale.NAME: data_scale.run,
    unit_costs.NAME: unit_costs.run,
    overload.NAME: overload.run,
}
RUN_ORDER = (
    unit_costs.NAME,
    latency.NAME,
    throughput.NAME,
    burst.NAME,
    utilisation.NAME,
    overload.NAME,
    memory.NAME,
    data_scale.NAME,
)


def _say(message: str) -> None:
    print(f"bench | {message}", file=sys.stderr, flush=True)


async def _within_limit(
    scenario: Awaitable[ScenarioResult], limit_s: float | None
) -> ScenarioResult:
    """The scenario's result, or TimeoutError past `limit_s` after printing where every task
    was waiting (what a hang needs to be found)."""
    task = asyncio.ensure_future(scenario)
    done, _ = await asyncio.wait({task}, timeout=limit_s)
    if task in done:
        return task.result()
    _say(f"still running after {limit_s:.0f} s; where each task waits:")
    for other in asyncio.all_tasks():
        other.print_stack(limit=8, file=sys.stderr)
    task.cancel()
    await asyncio.wait({task}, timeout=10)
    raise TimeoutError(f"scenario still running after {limit_s:.0f} s (its limit at this scale)")


async def run_all(
    names: Sequence[str], ctx: Context, scale_name: str
) -> tuple[list[ScenarioResult], bool]:
    machine = machine_info()
    results: dict[str, ScenarioResult] = {}
    ok = True
    stack = ctx.stack
    await asyncio.to_thread(stack.start)
    try:
        for name in [n for n in RUN_ORDER if n in names]:
            _say(f"{name}: running")
            started = time.monotonic()
            try:
                result = await _within_limit(SCENARIOS[name](ctx), ctx.scale.scenario_limit_s)
            except Exception as exc:
                ok = False
                _say(f"{name}: FAILED\n{traceback.format_exc()}")
                result = ScenarioResult(name, "failed")
                reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"
                result.add(Figure("scenario failed", float("nan"), note=reason))
                result.details = {"error": traceback.format_exc()}
                await asyncio.to_thread(stack.retire)
            result.duration_s = time.monotonic() - started
            result.details = clean_for_json(result.details)
            result.series = clean_for_json(result.series)
            path = write_result(ctx.out_dir, result, scale=scale_name, machine=machine)
            _say(f"{name}: done in {result.duration_s:.0f} s -> {path}")
            results[name] = result
    finally:
        await asyncio.to_thread(stack.stop)
    ordered = [results[n] for n in SCENARIOS if n in results]
    # The summary covers every result in the folder, also those of earlier runs.
    stored, latest_machine = load_results(ctx.out_dir, list(SCENARIOS))
    summary = (
        "Each scenario's JSON names the machine and the time it was measured; latest: "
        f"{latest_machine.get('cpu')}, {latest_machine.get('usable_cpus')} CPUs, "
        f"{latest_machine.get('memory_gb')} GB, Python {latest_machine.get('python')}, "
        f"git {latest_machine.get('git')}.\n\n"
        + "\n".join(f"- {r.name}: {r.started_at} ({r.description})" for r in stored)
        + f"\n\n{summary_table(stored)}\n"
    )
    (ctx.out_dir / "summary.md").write_text(summary)
    if ctx.out_dir == RESULTS_DIR:
        update_readme(README, summary)
    return ordered, ok


def update_readme(readme: Path, summary: str) -> None:
    """Put `summary` between the README's bench markers (the committed results' table)."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        _say(f"{readme.name} has no {README_START} ... {README_END} block; not updated")
        return
    readme.write_text(text[: start + len(README_START)] + "\n" + summary + text[end:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default=None, help="full | smoke (default: $BENCH_SCALE, full)")
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--base-dir", type=Path, default=None, help="stack data folder")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy profiles")
    args = parser.parse_args(argv)

    scale = scale_from_env(args.scale)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")
    default_out = RESULTS_DIR if scale.name == "full" else REPO / ".local" / "bench-smoke"
    out_dir = (args.out or default_out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    base_dir = (args.base_dir or REPO / ".local" / f"bench-{scale.name}-stack").resolve()
    ctx = Context(BenchStack(base_dir), scale, out_dir, profile=not args.no_profile)
    _say(f"scale {scale.name}, scenarios {names}, results in {out_dir}, stack in {base_dir}")
    coroutine = run_all(names, ctx, scale.name)
    try:
        import uvloop
    except ImportError:
        results, ok = asyncio.run(coroutine)
    else:
        results, ok = uvloop.run(coroutine)
    print(summary_table(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
