"""Scale out on one machine, for real: a 3-node NATS cluster with streams replicated 3 times and
two replicas of every service. One NATS member (the stream leader) and one replica of each
service are SIGKILLed while generations flow, and never come back: nothing may be lost,
duplicated or stuck.

Size: GENBUS_CLUSTER_GENERATIONS (default 100, sized for CI).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from genbus.contracts import DEAD_LETTER_STREAM, GENERATIONS_STREAM
from genbus.devstack.system import AccountSeed
from tests.cluster.harness import REPLICAS, STREAM_REPLICAS, ClusterRun
from tests.faults.harness import TERMINAL, wait_until
from tests.figures import report

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

GENERATIONS = int(os.environ.get("GENBUS_CLUSTER_GENERATIONS", "100"))
ACCOUNTS = (
    AccountSeed("sim-a", "sim-key-1", max_concurrent=3),
    AccountSeed("sim-b", "sim-key-2", max_concurrent=3),
)


async def test_cluster_survives_losing_a_nats_node_and_a_replica_of_each_service(
    tmp_path: Path,
) -> None:
    run = ClusterRun(tmp_path, replicas=dict(REPLICAS), accounts=ACCOUNTS)
    started = time.monotonic()
    await asyncio.to_thread(run.start)
    try:
        replication = await run.stream_replication()
        assert replication[GENERATIONS_STREAM.name] == (STREAM_REPLICAS, STREAM_REPLICAS - 1)
        assert replication[DEAD_LETTER_STREAM.name] == (STREAM_REPLICAS, STREAM_REPLICAS - 1)

        flowing = time.monotonic()
        load = asyncio.create_task(run.post_load(GENERATIONS, duration_s=GENERATIONS / 12))
        await asyncio.sleep(2.0)
        leader = await run.stream_leader()
        await run.kill(leader.config.server_name)
        await asyncio.sleep(1.5)
        for name in ("api-2", "dispatcher-2", "poller-2"):
            await run.kill(name)
        await load
        counts = await run.wait_all_terminal(timeout=120)
        drained_s = time.monotonic() - flowing

        rows = await run.generation_rows()
        lost = [gid for gid in run.accepted if gid not in rows]
        stuck = {s: n for s, n in counts.items() if s not in TERMINAL}
        settled = await wait_until(lambda: _no_unsettled(run), timeout=60)
        unsettled = await run.unsettled_messages()
        events = await run.completed_event_counts()
        outcomes = await run.completed_outcomes()
        not_exactly_once = {g: events[g] for g in rows if events[g] != 1}
        mismatched = [g for g, status in rows.items() if outcomes.get(g) != {status}]
        stats = await run.sim_stats()
        slots = await run.slots_in_use()
        dead = await run.dead_letters()
        new_leader = await run.stream_leader()
        work = run.work_per_replica()
        report(
            "\nCLUSTER RUN: "
            f"nats_nodes=3 stream_replicas={STREAM_REPLICAS} replicas={REPLICAS} "
            f"generations={len(rows)} accepted={len(run.accepted)} kills={run.kills} "
            f"stream_leader={leader.config.server_name}->{new_leader.config.server_name} "
            f"lost={len(lost)} stuck={sum(stuck.values())} statuses={counts} "
            f"duplicates={stats['duplicate_references']} "
            f"violations={stats['concurrency_violations']} leaked_slots={slots} "
            f"not_exactly_one_outcome={len(not_exactly_once)} dead_letters={dead} "
            f"post_retries={run.post_failures} submissions={stats['submissions']} "
            f"replays={stats['idempotent_replays']} load_to_drained_s={drained_s:.1f} "
            f"total_s={time.monotonic() - started:.1f} work_per_replica={work}"
        )
        assert len(run.accepted) >= GENERATIONS
        assert lost == []
        assert stuck == {}
        assert counts.get("completed", 0) == len(rows)
        assert stats["duplicate_references"] == 0
        assert stats["concurrency_violations"] == 0
        assert slots == 0
        assert not_exactly_once == {}
        assert mismatched == []
        assert settled, unsettled
        assert dead == 0
        assert new_leader.config.server_name != leader.config.server_name
        # The surviving workers' /metrics show what happened.
        dispatcher_metrics = await run.scrape("dispatcher")
        poller_metrics = await run.scrape("poller")
        assert dispatcher_metrics['genbus_dispatch_queue_depth{provider="sim"}'] == 0
        assert all(
            v == 0
            for k, v in dispatcher_metrics.items()
            if k.startswith("genbus_account_slots") and 'state="busy"' in k
        )
        assert (
            dispatcher_metrics[
                'genbus_provider_calls_total{code="ok",operation="submit",provider="sim"}'
            ]
            > 0
        )
        assert dispatcher_metrics['genbus_requested_to_submitted_seconds_count{provider="sim"}'] > 0
        assert (
            poller_metrics['genbus_provider_job_seconds_count{provider="sim",status="completed"}']
            > 0
        )
        # The killed replicas had a share of the work before they died.
        assert work["api-2"] > 0
        assert work["dispatcher-2"] > 0
    finally:
        await asyncio.to_thread(run.stop)


async def _no_unsettled(run: ClusterRun) -> bool:
    return not await run.unsettled_messages()
