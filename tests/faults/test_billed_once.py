"""Billed once whatever the provider does: slow, silent, or left by a dispatcher that died,
shut down or froze in the middle of a call. Every case runs a real system (each service its
own process, real NATS and Postgres) and ends with the same audit:

- every job at the provider belongs to one generation, and no generation has two
  (provider submissions == generations that reached the provider, duplicate references 0);
- every generation is terminal: completed, or failed with a code the case expects;
- nothing lost, no conflicting outcome, no slot left busy, no concurrency violation.

The cases share one system (starting one costs ~40 s on a small machine): each begins with
`FaultRun.new_case` (the sim's counters from zero, its knobs set for the case) and its audit
looks only at its own generations. A case that signals, pauses or reconfigures a service
restores it (or the next case does, see `run`).

Size: GENBUS_FAULTS_GENERATIONS / 20 generations per case (at least 12).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from genbus.devstack.system import AccountSeed, new_credentials_key
from tests.faults.harness import (
    GENERATIONS,
    Body,
    FaultRun,
    audit,
    image_to_video,
    text_to_video,
    wait_until,
)
from tests.figures import report

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

SIZE = max(12, GENERATIONS // 20)
#: Offered load: generations posted per second.
RATE = 8.0

SIM_ACCOUNTS = (
    AccountSeed("sim-a", "sim-key-1", max_concurrent=3),
    AccountSeed("sim-b", "sim-key-2", max_concurrent=3),
)
PIXVERSE_ACCOUNTS = (
    AccountSeed("pixverse-a", "sim-key-3", max_concurrent=3, provider_id="pixverse"),
    AccountSeed("pixverse-b", "sim-key-4", max_concurrent=3, provider_id="pixverse"),
)

COMPLETED = "completed"
OUTCOME_UNKNOWN = "failed:submission_outcome_unknown"
CREDENTIALS_UNREADABLE = "failed:account_credentials_unreadable"

LEASE_S = 2.0
GRACE_S = 8.0
#: Where a generation can end before its provider job (an unknown outcome, a job nobody can
#: poll), the job runs this long (as real video jobs run long): if its slot is freed at once,
#: the account's next job overlaps it and the sim counts a concurrency violation.
LONG_JOB = {"duration_s": 2.0, "duration_jitter_s": 0.0}
SLOT_HOLD_S = 3.0
LOSE = "[lose-response]"
REPLICA_2 = "replica-2"


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultRun]:
    """One system for every case: a dispatcher, a poller, an api; Pixverse and sim accounts."""
    run = FaultRun(
        tmp_path_factory.mktemp("billed-once"),
        replicas={"api": 1, "dispatcher": 1, "poller": 1},
        accounts=SIM_ACCOUNTS + PIXVERSE_ACCOUNTS,
        env={
            "GENBUS_DISPATCHER_LEASE_S": str(LEASE_S),
            "GENBUS_SHUTDOWN_GRACE_S": str(GRACE_S),
            # A job ended without the provider's word keeps its slot while it may still run:
            # here a little longer than the longest sim job (`LONG_JOB`).
            "GENBUS_DISPATCHER_UNFOLLOWED_SLOT_HOLD_S": str(SLOT_HOLD_S),
        },
        # A second dispatcher (case 4) names its claims; the first one keeps its default owner.
        service_env={"dispatcher-2": {"GENBUS_DISPATCHER_REPLICA_ID": REPLICA_2}},
    )
    try:
        await asyncio.to_thread(run.start)
        yield run
    finally:
        await asyncio.to_thread(run.stop)


@pytest.fixture
async def run(system: FaultRun) -> FaultRun:
    """The shared system, its poller reading credentials with the system's key again."""
    await system.ensure_env(
        "poller", {"GENBUS_CREDENTIALS_KEYS": system.system.config.credentials_key}
    )
    return system


async def _billed_once(run: FaultRun, case: str, *, expected: set[str]) -> dict[str, Any]:
    """The audit every case ends with; its figures, reported. Returns the sim's stats.

    `expected`: exactly the outcomes ("completed", "failed:<code>") the generations end with.
    """
    found = await audit(run, terminal_timeout=120.0)
    outcomes = await run.outcomes()
    jobs = await run.jobs_at_provider()  # after the audit read the sim's stats (`lookups`)
    stats = found.stats
    reached = sum(1 for n in jobs.values() if n)
    twice = {gid: n for gid, n in jobs.items() if n > 1}
    report(
        f"\nBILLED ONCE {case}: generations={len(found.rows)} "
        f"submissions={stats['submissions']} reached_provider={reached} "
        f"duplicate_references={stats['duplicate_references']} outcomes={outcomes} "
        f"leaked_slots={found.slots} violations={stats['concurrency_violations']} "
        f"lost_responses={stats.get('lost_responses')} "
        f"delayed_responses={stats.get('delayed_responses')} "
        f"replays={stats['idempotent_replays']} lookups={stats.get('lookups')} "
        f"uploads={stats['image_uploads']} lost={len(found.lost)} dead_letters={found.dead}"
    )
    assert len(found.rows) == len(run.accepted)
    found.assert_sound()
    assert twice == {}, f"generations with more than one job at the provider: {twice}"
    # Every job the provider holds belongs to a generation, and each counts once.
    assert sum(jobs.values()) == stats["submissions"]
    assert stats["submissions"] == reached
    assert set(outcomes) == expected, outcomes
    return stats


async def _load(run: FaultRun, count: int, body: Callable[[int], Body]) -> list[str]:
    return await run.post_load(count, duration_s=count / RATE, body=body)


# -- 1. provider calls slower than the lease ----------------------------------------------


@pytest.mark.parametrize("provider", ["pixverse", "sim"])
async def test_provider_calls_slower_than_the_lease(run: FaultRun, provider: str) -> None:
    """Pixverse: image upload + generate, each 1.5 s (3 s > the 2 s lease); the sim's own API:
    one 2.5 s submit. The lease is renewed while the call is in flight: nobody takes the job
    over, nothing is submitted twice, all complete."""
    await run.new_case(submit_latency_ms=1500 if provider == "pixverse" else 2500)

    def body(i: int) -> Body:
        if provider == "pixverse":
            return image_to_video("pixverse", f"slow {i}")
        return text_to_video("sim", f"slow {i}")

    await _load(run, SIZE, body)
    stats = await _billed_once(run, f"slow provider ({provider})", expected={COMPLETED})
    assert stats["submissions"] == SIZE
    if provider == "pixverse":
        assert stats["image_uploads"] == SIZE


# -- 2. the provider accepts the job and loses the answer ---------------------------------


@pytest.mark.parametrize("provider", ["pixverse", "sim"])
async def test_provider_accepts_then_loses_the_response(run: FaultRun, provider: str) -> None:
    """Every third generation's job is created, then the connection closes without an answer.
    Pixverse (no idempotency, no lookup): exactly those end `submission_outcome_unknown`, never
    resubmitted. The sim's own API: resolved by lookup/replay with the same key, all complete."""
    await run.new_case(**LONG_JOB)
    marked = {i for i in range(SIZE) if i % 3 == 0}

    def body(i: int) -> Body:
        return text_to_video(provider, f"{LOSE if i in marked else ''} answer {i}".strip())

    ids = await _load(run, SIZE, body)
    if provider == "pixverse":
        stats = await _billed_once(
            run, "lost response (pixverse)", expected={COMPLETED, OUTCOME_UNKNOWN}
        )
        outcomes = await run.generation_outcomes()
        unknown = {gid for gid, outcome in outcomes.items() if outcome == OUTCOME_UNKNOWN}
        assert unknown == {ids[i] for i in marked}
    else:
        stats = await _billed_once(run, "lost response (sim)", expected={COMPLETED})
        assert stats["idempotent_replays"] + stats["lookups"] >= len(marked)
    # Each lost one reached the provider once: billed once, not resubmitted.
    assert stats["submissions"] == SIZE
    assert stats["lost_responses"] == len(marked)


# -- 3. a dispatcher signalled in the middle of a provider call ---------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_dispatcher_signalled_mid_call(run: FaultRun, sig: signal.Signals) -> None:
    """Pixverse answers 2 s after creating the job; the dispatcher gets the signal while a call
    is in flight, then starts again. SIGTERM: it finishes its calls within the grace and exits
    0: all complete. SIGKILL: the calls it had in flight end `submission_outcome_unknown`
    (their jobs exist; sending them again could bill twice), the rest complete."""
    await run.new_case(accepted_response_delay_ms=2000)
    load = asyncio.create_task(
        _load(run, SIZE, lambda i: image_to_video("pixverse", f"{sig.name} {i}"))
    )
    # Calls in flight (uploads, generates), at least one a created job whose answer is on its
    # way: a few slots' worth, so that the signal catches several calls at different stages.
    at_signal = await run.wait_sim(
        lambda s: s["submits_in_progress"] >= 3 and s["delayed_responses"] > 0
    )
    dispatcher = run.process("dispatcher")
    started = time.monotonic()
    if sig is signal.SIGTERM:
        await asyncio.to_thread(dispatcher.stop, GRACE_S + 20.0)
    else:
        await asyncio.to_thread(dispatcher.kill)
    exited_s = time.monotonic() - started
    exit_code = dispatcher.returncode
    # Calls it left unanswered (none after a graceful stop), read while no dispatcher runs.
    in_doubt = set().union(*(await run.in_doubt_claims()).values())
    await run.restart_ready("dispatcher")
    await load
    report(
        f"\n{sig.name} dispatcher mid-call: exit_code={exit_code} exited_in_s={exited_s:.2f} "
        f"(grace {GRACE_S}) submits_in_progress_at_signal={at_signal['submits_in_progress']} "
        f"calls_left_in_doubt={len(in_doubt)}"
    )
    if sig is signal.SIGTERM:
        await _billed_once(run, f"{sig.name} mid-call (pixverse)", expected={COMPLETED})
        assert exit_code == 0
        assert exited_s < GRACE_S
        assert in_doubt == set()
    else:
        assert in_doubt, "the SIGKILL came with no job-creating call in flight"
        await _billed_once(
            run, f"{sig.name} mid-call (pixverse)", expected={COMPLETED, OUTCOME_UNKNOWN}
        )
        assert exit_code == -signal.SIGKILL
        # Exactly the calls the killed dispatcher had in flight are in doubt.
        assert await _with_outcome(run, OUTCOME_UNKNOWN) == in_doubt


async def _with_outcome(run: FaultRun, outcome: str) -> set[str]:
    return {gid for gid, found in (await run.generation_outcomes()).items() if found == outcome}


# -- 4. two replicas race for an expired lease --------------------------------------------


async def test_paused_replica_loses_its_claims_to_the_other(run: FaultRun) -> None:
    """Two dispatchers; one is frozen (SIGSTOP) while it holds claims with calls in flight,
    past its lease, until the other has recovered every claim it held; then it runs again
    (SIGCONT) and finds its calls answered but its claims gone. Fenced: it writes nothing,
    and each generation is at the provider at most once."""
    # Answers 3 s late: calls pile up in flight on both replicas.
    await run.new_case(accepted_response_delay_ms=3000)
    second = run.system.add_replica("dispatcher")
    try:
        await run.restart_ready(second.name)
        count = max(SIZE, 16)
        load = asyncio.create_task(
            _load(run, count, lambda i: image_to_video("pixverse", f"race {i}"))
        )
        replicas = ("dispatcher", second.name)
        paused, owner, held, in_doubt = await _pause_a_replica_with_calls_in_flight(run, replicas)
        # Frozen past its lease: wait until the other replica has taken over all its claims.
        recovered = await wait_until(lambda: _holds_none(run, owner), timeout=LEASE_S * 15)
        run.process(paused).resume()
        await load
        assert recovered, f"{paused}'s claims were not recovered: {await run.claims_by_owner()}"
        report(
            f"\npaused {paused} ({owner}) holding {held} claims, {len(in_doubt)} of them "
            "with a job-creating call in flight"
        )
        await _billed_once(
            run, "replica paused past its lease (pixverse)", expected={COMPLETED, OUTCOME_UNKNOWN}
        )
        # The calls the frozen replica had in flight, and only those, have an unknown outcome;
        # its other claims were submitted by the other replica.
        assert await _with_outcome(run, OUTCOME_UNKNOWN) == in_doubt
        assert all(run.process(name).is_running() for name in replicas)
    finally:
        await asyncio.to_thread(second.stop)


async def _pause_a_replica_with_calls_in_flight(
    run: FaultRun, replicas: tuple[str, str], timeout: float = 60.0
) -> tuple[str, str, int, set[str]]:
    """SIGSTOP the replica with the most job-creating calls in flight (2 or more if that
    happens within 10 s); (its process name, its lease owner, the claims it holds frozen,
    those of them with a call in flight)."""
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        await run.wait_sim(lambda s: s["submits_in_progress"] > 0 and s["delayed_responses"] > 0)
        in_flight = await run.in_doubt_claims()
        wanted = 2 if time.monotonic() < started + 10.0 else 1
        if not in_flight or max(len(calls) for calls in in_flight.values()) < wanted:
            await asyncio.sleep(0.05)  # polling interval
            continue
        owner = max(in_flight, key=lambda o: len(in_flight[o]))
        # The second replica names itself; the first keeps its default owner name.
        name = replicas[1] if owner == REPLICA_2 else replicas[0]
        run.process(name).pause()
        in_doubt = (await run.in_doubt_claims()).get(owner, set())
        if in_doubt:
            held = (await run.claims_by_owner()).get(owner, 0)
            return name, owner, held, in_doubt
        run.process(name).resume()  # its calls were answered just before the pause: again
    raise AssertionError("no dispatcher replica had a job-creating call in flight")


async def _holds_none(run: FaultRun, owner: str) -> bool:
    return (await run.claims_by_owner()).get(owner, 0) == 0


# -- 5. a poller that cannot decrypt the account's credentials ----------------------------


async def test_poller_cannot_decrypt_the_account(run: FaultRun) -> None:
    """The poller has other credential keys than the dispatcher: every job is submitted (once)
    but cannot be polled, so every generation fails `account_credentials_unreadable` at once
    (nothing waits for its deadline) and its slot is freed once the job may have ended (held
    `SLOT_HOLD_S`: the sim's jobs run `LONG_JOB`). The next case's `run` restores the key."""
    await run.ensure_env("poller", {"GENBUS_CREDENTIALS_KEYS": new_credentials_key()})
    await run.new_case(**LONG_JOB)
    await _load(run, SIZE, lambda i: text_to_video("sim", f"unreadable {i}"))
    stats = await _billed_once(
        run, "poller cannot decrypt (sim)", expected={CREDENTIALS_UNREADABLE}
    )
    assert stats["submissions"] == SIZE
