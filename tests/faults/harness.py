"""Fault-injection harness: a genbus system whose every part can be SIGKILLed and restarted,
a load generator that keeps posting through the faults, and the end-of-run audit."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from nats.js.api import ConsumerConfig, DeliverPolicy

from genbus.contracts import (
    COMPLETED,
    CONSUMERS,
    DEAD_LETTER_STREAM,
    GENERATIONS_STREAM,
    provider_idempotency_key,
)
from genbus.devstack.nats import NatsServer
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.processes import ServiceProcess
from genbus.devstack.system import OPTIONAL_SERVICES, AccountSeed, GenbusSystem, SystemConfig
from genbus.providers.pixverse import pixverse_trace_id
from genbus.runtime.nats_client import connect_nats

TERMINAL = ("completed", "failed", "cancelled")
GENERATIONS = int(os.environ.get("GENBUS_FAULTS_GENERATIONS", "300"))

Body = dict[str, Any]

#: The sim's fault knobs at their defaults (`FaultRun.new_case` lays a case's over them).
SIM_BEHAVIOUR_DEFAULTS: dict[str, Any] = {
    "duration_s": 0.3,
    "duration_jitter_s": 0.4,
    "submit_latency_ms": 0.0,
    "accepted_response_delay_ms": 0.0,
    "lost_response_rate": 0.0,
    "status_hang_keys": [],
}


def text_to_video(provider_id: str = "sim", prompt: str = "fault run") -> Body:
    """A text-to-video request (sim's own API, or the Pixverse facade with "pixverse")."""
    return {
        "operation_type": "text_to_video",
        "provider_id": provider_id,
        "params": {"prompt": prompt},
    }


def image_to_video(provider_id: str = "pixverse", prompt: str = "fault run") -> Body:
    """An image-to-video request: on Pixverse an image upload, then the generate call."""
    return {
        "operation_type": "image_to_video",
        "provider_id": provider_id,
        "params": {"prompt": prompt},
        # The sim's Pixverse upload accepts any http(s) image URL without fetching it.
        "inputs": [{"role": "image", "url": "https://images.example.com/fault-run.png"}],
    }


@dataclass
class FaultRun:
    """Everything a fault run starts, and what it measured."""

    base: Path
    replicas: dict[str, int]
    accounts: tuple[AccountSeed, ...]
    #: Laid over the run's defaults: genbus env (every service), sim env, one service's env.
    env: Mapping[str, str] = field(default_factory=dict)
    sim_env: Mapping[str, str] = field(default_factory=dict)
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    nats: NatsServer = field(init=False)
    postgres: PostgresServer = field(init=False)
    system: GenbusSystem = field(init=False)
    accepted: dict[str, str] = field(default_factory=dict)  # generation id → idempotency key
    post_failures: int = 0
    kills: list[str] = field(default_factory=list)
    recovery_s: list[float] = field(default_factory=list)
    #: Dead letters there were when the current case began (see `new_case`).
    dead_letters_before: int = 0

    def start(self) -> None:
        self.nats = NatsServer(self.base / "nats", log_path=self.base / "nats.log")
        self.nats.start()
        # Durable commits: a killed Postgres must not lose what it acknowledged.
        self.postgres = PostgresServer(self.base / "pg", log_path=self.base / "pg.log")
        self.postgres.start()
        self.postgres.create_database("genbus")
        self.system = GenbusSystem(self.system_config(self.nats.url, **self.env))
        self.system.start()

    def system_config(self, nats_url: str, **extra_env: str) -> SystemConfig:
        """The system under test: short leases, quick reconciling, a sim that counts overflow."""
        cap = max(a.max_concurrent for a in self.accounts)
        return SystemConfig(
            base_dir=self.base / "run",
            nats_url=nats_url,
            database_url=self.postgres.dsn_for("genbus"),
            accounts=self.accounts,
            replicas=self.replicas,
            log_to_files=True,
            log_format="json",
            sim_env={
                "SIM_DURATION_S": str(SIM_BEHAVIOUR_DEFAULTS["duration_s"]),
                "SIM_DURATION_JITTER_S": str(SIM_BEHAVIOUR_DEFAULTS["duration_jitter_s"]),
                # Accept overflow and count it, so the audit sees any slot overflow.
                "SIM_ENFORCE_CONCURRENCY": "false",
                "SIM_PER_KEY_CONCURRENCY": str(cap),
                **self.sim_env,
            },
            service_env=self.service_env,
            nats_security=self.nats.security,
            extra_env={
                "GENBUS_API_ALLOW_ANONYMOUS": "true",
                "GENBUS_DISPATCHER_LEASE_S": "3",
                "GENBUS_API_RECONCILE_INTERVAL_S": "2",
                **extra_env,
            },
        )

    async def new_case(self, **sim_config: Any) -> None:
        """Start a case on a running system: from now on the audit looks only at generations
        posted from here on, the sim's counters start from zero and its behaviour is its
        defaults with `sim_config` laid over. Call it once the previous case's audit is done
        (every generation ended: nothing of it is still at the sim)."""
        self.accepted = {}
        self.post_failures = 0
        self.kills = []
        self.recovery_s = []
        self.dead_letters_before = await self.dead_letters()
        # Slots the previous case's unfollowed jobs hold expire by themselves: start with all.
        await wait_until(lambda: _no_busy_slots(self, held=True), timeout=30)
        await self.configure_sim(**{**SIM_BEHAVIOUR_DEFAULTS, **sim_config})
        async with httpx.AsyncClient(base_url=self.system.sim_url) as client:
            (await client.post("/_sim/reset")).raise_for_status()

    async def ensure_env(self, name: str, env: Mapping[str, str]) -> None:
        """Restart process `name` with `env` laid over its environment, unless it has it."""
        process = self.process(name)
        if all(process.env.get(key) == value for key, value in env.items()):
            return
        await asyncio.to_thread(process.stop)
        process.env.update(env)
        await self.restart_ready(name)

    def stop(self) -> None:
        """Stop whatever `start` got to start (also after it failed half-way)."""
        for name in ("system", "nats", "postgres"):
            part = getattr(self, name, None)
            if part is None:
                continue
            try:
                part.stop()
            except Exception as exc:  # keep stopping the rest
                print(f"stop failed: {exc!r}")

    # -- faults

    def _killable(self, name: str) -> Any:
        if name == "nats":
            return self.nats
        if name == "postgres":
            return self.postgres
        return self.system.processes[name]

    async def kill_and_restart(self, names: list[str], down_s: float = 0.5) -> None:
        for name in names:
            await asyncio.to_thread(self._killable(name).kill)
        self.kills.append("+".join(names))
        await asyncio.sleep(down_s)  # the outage itself, not synchronisation
        # Infrastructure first, then services, as an operator would.
        order = sorted(names, key=lambda n: (n not in ("postgres", "nats"), n))
        for name in order:
            await asyncio.to_thread(self._killable(name).start)
        restarted_at = time.monotonic()
        await self._wait_api_ready()
        await self._probe_completion()
        # Recovery: from the restart until a generation posted afterwards has completed.
        self.recovery_s.append(time.monotonic() - restarted_at)

    async def _wait_api_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.system.api_url, timeout=2.0) as client:
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("api not ready after restart")
                await asyncio.sleep(0.05)

    async def _probe_completion(self, timeout: float = 90.0) -> float:
        """Seconds until a generation posted now is terminal: the system works again."""
        started = time.monotonic()
        gid = await self.post_one()
        while True:
            async with httpx.AsyncClient(base_url=self.system.api_url, timeout=5.0) as client:
                try:
                    body = (await client.get(f"/api/v1/generations/{gid}")).json()
                    if body.get("status") in TERMINAL:
                        return time.monotonic() - started
                except (httpx.HTTPError, ValueError):
                    pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f"probe {gid} not terminal after {timeout}s")
            await asyncio.sleep(0.05)

    # -- load

    async def post_one(self, body: Body | None = None, attempts: int = 200) -> str:
        """POST one generation (default: sim text-to-video), retrying through outages with the
        same Idempotency-Key."""
        key = uuid.uuid4().hex
        if body is None:
            body = text_to_video("sim", f"fault run {key[:8]}")
        async with httpx.AsyncClient(base_url=self.system.api_url, timeout=5.0) as client:
            for _ in range(attempts):
                try:
                    response = await client.post(
                        "/api/v1/generations", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code in (200, 201):
                    gid: str = response.json()["id"]
                    self.accepted[gid] = key
                    return gid
                self.post_failures += 1
                await asyncio.sleep(0.1)
        raise AssertionError("could not post a generation through the faults")

    async def post_load(
        self, count: int, duration_s: float, body: Callable[[int], Body] | None = None
    ) -> list[str]:
        """POST `count` generations over `duration_s` (`body(i)`: the i-th request's body);
        their ids, in posting order."""
        interval = duration_s / count
        tasks = []
        for index in range(count):
            # Without a body, post as subclasses do by default (the cluster harness's own).
            post = self.post_one(body(index)) if body else self.post_one()
            tasks.append(asyncio.create_task(post))
            await asyncio.sleep(interval)  # pacing of the offered load
        return list(await asyncio.gather(*tasks))

    # -- audit

    async def wait_all_terminal(self, timeout: float = 180.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            counts = await self.status_counts()
            if all(status in TERMINAL for status in counts):
                return counts
            if time.monotonic() > deadline:
                return counts
            await asyncio.sleep(0.25)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.postgres.dsn_for("genbus"))
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        finally:
            await conn.close()
        return rows

    async def _generations(self) -> list[asyncpg.Record]:
        """This run's (or case's: see `new_case`) generations: id, status, error code,
        provider, attempt."""
        return await self._fetch(
            "SELECT g.id::text AS id, g.status, g.error->>'code' AS code, g.provider_id, "
            "GREATEST(g.attempt, COALESCE(j.attempt, 0), 1) AS attempts "
            "FROM api.generations g "
            "LEFT JOIN dispatcher.dispatch_jobs j ON j.generation_id = g.id "
            "WHERE g.id = ANY($1::uuid[])",
            list(self.accepted),
        )

    async def status_counts(self) -> dict[str, int]:
        return dict(Counter(r["status"] for r in await self._generations()))

    async def generation_rows(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in await self._generations()}

    async def generation_outcomes(self) -> dict[str, str]:
        """generation id → its outcome: "completed", "failed:<error code>", "pending", ..."""
        return {
            r["id"]: r["status"] if r["code"] is None else f"{r['status']}:{r['code']}"
            for r in await self._generations()
        }

    async def outcomes(self) -> dict[str, int]:
        """Generations per outcome (as in `generation_outcomes`)."""
        return dict(Counter((await self.generation_outcomes()).values()))

    async def slots_in_use(self) -> int:
        """Slots of jobs still claimed or submitted: at the end of a run, leaked ones."""
        conn = await asyncpg.connect(self.postgres.dsn_for("genbus"))
        try:
            value = await conn.fetchval(
                "SELECT count(*) FROM dispatcher.dispatch_jobs "
                "WHERE state IN ('claimed', 'submitted')"
            )
        finally:
            await conn.close()
        return int(value)

    async def held_slots(self) -> int:
        """Slots an ended job keeps for a while because its provider job may still run
        (`slot_held_until`; 0 on a schema without it)."""
        conn = await asyncpg.connect(self.postgres.dsn_for("genbus"))
        try:
            value = await conn.fetchval(
                "SELECT count(*) FROM dispatcher.dispatch_jobs WHERE slot_held_until > now()"
            )
        except asyncpg.UndefinedColumnError:
            value = 0
        finally:
            await conn.close()
        return int(value)

    async def completed_outcomes(self) -> dict[str, set[str]]:
        """Every completed event in the stream, read independently: generation → statuses."""
        nc = await connect_nats(self.nats.admin_url)
        outcomes: dict[str, set[str]] = defaultdict(set)
        try:
            js = nc.jetstream()
            info = await js.stream_info(GENERATIONS_STREAM.name, subjects_filter=COMPLETED.wildcard)
            total = sum((info.state.subjects or {}).values())
            if total:
                sub = await js.subscribe(
                    COMPLETED.wildcard,
                    ordered_consumer=True,
                    config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
                )
                for _ in range(total):
                    msg = await sub.next_msg(timeout=5.0)
                    event = json.loads(msg.data)
                    if event["generation_id"] in self.accepted:
                        outcomes[event["generation_id"]].add(event["status"])
                await sub.unsubscribe()
        finally:
            await nc.close()
        return outcomes

    async def unsettled_messages(self) -> dict[str, tuple[int, int]]:
        """Consumers with messages still pending or unacked: (num_pending, num_ack_pending)."""
        nc = await connect_nats(self.nats.admin_url)
        try:
            js = nc.jetstream()
            result = {}
            for spec in CONSUMERS:
                if spec.service in OPTIONAL_SERVICES and not self.replicas.get(spec.service):
                    continue  # a service this run does not start (webhooks)
                info = await js.consumer_info(GENERATIONS_STREAM.name, spec.durable)
                if info.num_pending or info.num_ack_pending:
                    result[spec.durable] = (info.num_pending, info.num_ack_pending)
            return result
        finally:
            await nc.close()

    async def dead_letters(self) -> int:
        nc = await connect_nats(self.nats.admin_url)
        try:
            info = await nc.jetstream().stream_info(DEAD_LETTER_STREAM.name)
            return int(info.state.messages)
        finally:
            await nc.close()

    async def sim_stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.system.sim_url) as client:
            stats: dict[str, Any] = (await client.get("/_sim/stats")).json()
            return stats

    async def configure_sim(self, **patch: Any) -> None:
        """Change the sim's behaviour at run time (`PUT /_sim/config`)."""
        async with httpx.AsyncClient(base_url=self.system.sim_url) as client:
            response = await client.put("/_sim/config", json=patch)
            response.raise_for_status()

    async def claims_by_owner(self) -> dict[str, int]:
        """Jobs in state claimed, per lease owner (a dispatcher replica)."""
        rows = await self._fetch(
            "SELECT lease_owner, count(*) AS n FROM dispatcher.dispatch_jobs "
            "WHERE state = 'claimed' GROUP BY 1"
        )
        return {r["lease_owner"] or "": r["n"] for r in rows}

    async def in_doubt_claims(self) -> dict[str, set[str]]:
        """Claims whose job-creating call to a provider without idempotency has started and not
        been answered (`submit_started_at` set), per lease owner: generation ids. A claim
        recovered in that state must end `submission_outcome_unknown`, never be sent again."""
        rows = await self._fetch(
            "SELECT lease_owner, generation_id::text AS id FROM dispatcher.dispatch_jobs "
            "WHERE state = 'claimed' AND submit_started_at IS NOT NULL"
        )
        found: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            found[row["lease_owner"] or ""].add(row["id"])
        return dict(found)

    async def jobs_at_provider(self) -> dict[str, int]:
        """generation id → how many jobs the sim holds for it, found by client reference.

        The sim's own API sends the generation id as the reference; Pixverse's facade records
        the `Ai-trace-id`, derived from the idempotency key of each attempt, so every attempt's
        reference is looked up: a resubmission under a new attempt counts here too. (Each
        lookup counts in the sim's `lookups`: read its stats first.)
        """
        rows = await self._generations()
        keys: dict[str, list[str]] = defaultdict(list)
        for account in self.accounts:
            keys[account.provider_id].append(account.api_key)
        found: dict[str, int] = {}
        async with httpx.AsyncClient(base_url=self.system.sim_url, timeout=10.0) as client:

            async def count(gid: str, provider_id: str, attempts: int) -> None:
                if provider_id == "pixverse":
                    references = [
                        pixverse_trace_id(provider_idempotency_key(UUID(gid), attempt))
                        for attempt in range(attempts + 1)
                    ]
                else:
                    references = [gid]
                total = 0
                for key in keys[provider_id]:
                    for reference in references:
                        response = await client.get(
                            "/v1/jobs",
                            params={"client_reference": reference},
                            headers={"Authorization": f"Bearer {key}"},
                        )
                        response.raise_for_status()
                        total += len(response.json()["data"])
                found[gid] = total

            await asyncio.gather(*(count(r["id"], r["provider_id"], r["attempts"]) for r in rows))
        return found

    # -- processes

    def process(self, name: str) -> ServiceProcess:
        return self.system.processes[name]

    async def restart_ready(self, name: str, timeout: float = 60.0) -> None:
        """Start a stopped service again and wait until it is ready."""
        process = self.process(name)
        await asyncio.to_thread(process.start)
        await asyncio.to_thread(
            process.wait_http_ok, f"{self.system.http_url(name)}/readyz", timeout
        )

    async def wait_sim(
        self, condition: Callable[[dict[str, Any]], bool], *, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Wait until the sim's stats meet `condition` (e.g. `submits_in_progress > 0`: a
        provider call is in flight); the stats at that moment."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.system.sim_url) as client:
            while True:
                stats: dict[str, Any] = (await client.get("/_sim/stats")).json()
                if condition(stats):
                    return stats
                if time.monotonic() > deadline:
                    raise AssertionError(f"sim stats not as awaited within {timeout}s: {stats}")
                await asyncio.sleep(0.01)


@dataclass
class Audit:
    """What the end-of-run audit found: nothing lost, nothing done twice, nothing stuck."""

    counts: dict[str, int]
    rows: dict[str, str]
    lost: list[str]
    stuck: dict[str, int]
    settled: bool
    unsettled: dict[str, tuple[int, int]]
    conflicting: dict[str, set[str]]
    without_outcome: list[str]
    mismatched: list[str]
    stats: dict[str, Any]
    slots: int
    dead: int

    def assert_sound(self) -> None:
        assert self.lost == []
        assert self.stuck == {}
        assert self.stats["duplicate_references"] == 0, self.stats["duplicated_references"]
        assert self.stats["concurrency_violations"] == 0, {
            key: (k["concurrency_violations"], k["max_concurrent_seen"])
            for key, k in self.stats["keys"].items()
            if k["concurrency_violations"]
        }
        assert self.slots == 0, f"{self.slots} dispatch jobs still claimed or submitted"
        assert self.conflicting == {}
        assert self.without_outcome == []
        assert self.mismatched == []
        assert self.settled, self.unsettled
        assert self.dead == 0


async def audit(run: FaultRun, *, terminal_timeout: float = 180.0) -> Audit:
    """Wait for every generation to end and every message to settle, then look at everything."""
    counts = await run.wait_all_terminal(terminal_timeout)
    rows = await run.generation_rows()
    settled = await wait_until(lambda: _no_unsettled(run), timeout=60)
    # The dispatcher frees a slot when it consumes the completed event: settled means done.
    await wait_until(lambda: _no_busy_slots(run), timeout=15)
    outcomes = await run.completed_outcomes()
    return Audit(
        counts=counts,
        rows=rows,
        lost=[gid for gid in run.accepted if gid not in rows],
        stuck={s: n for s, n in counts.items() if s not in TERMINAL},
        settled=settled,
        unsettled=await run.unsettled_messages(),
        conflicting={g: s for g, s in outcomes.items() if len(s) > 1},
        without_outcome=[g for g in rows if g not in outcomes],
        mismatched=[g for g, status in rows.items() if g in outcomes and outcomes[g] != {status}],
        stats=await run.sim_stats(),
        slots=await run.slots_in_use(),
        dead=await run.dead_letters() - run.dead_letters_before,
    )


async def _no_unsettled(run: FaultRun) -> bool:
    return not await run.unsettled_messages()


async def _no_busy_slots(run: FaultRun, *, held: bool = False) -> bool:
    if await run.slots_in_use():
        return False
    return not held or await run.held_slots() == 0


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[98]
