"""Fault-injection harness: a genbus system whose every part can be SIGKILLed and restarted,
a load generator that keeps posting through the faults, and the end-of-run audit."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from genbus.contracts import COMPLETED, CONSUMERS, DEAD_LETTER_STREAM, GENERATIONS_STREAM
from genbus.devstack.nats import NatsServer
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import AccountSeed, GenbusSystem, SystemConfig

TERMINAL = ("completed", "failed", "cancelled")
GENERATIONS = int(os.environ.get("GENBUS_FAULTS_GENERATIONS", "300"))


@dataclass
class FaultRun:
    """Everything a fault run starts, and what it measured."""

    base: Path
    replicas: dict[str, int]
    accounts: tuple[AccountSeed, ...]
    nats: NatsServer = field(init=False)
    postgres: PostgresServer = field(init=False)
    system: GenbusSystem = field(init=False)
    accepted: dict[str, str] = field(default_factory=dict)  # generation id → idempotency key
    post_failures: int = 0
    kills: list[str] = field(default_factory=list)
    recovery_s: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.nats = NatsServer(self.base / "nats", log_path=self.base / "nats.log")
        self.nats.start()
        # Durable commits: a killed Postgres must not lose what it acknowledged.
        self.postgres = PostgresServer(self.base / "pg", log_path=self.base / "pg.log")
        self.postgres.start()
        self.postgres.create_database("genbus")
        self.system = GenbusSystem(self.system_config(self.nats.url))
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
                "SIM_DURATION_S": "0.3",
                "SIM_DURATION_JITTER_S": "0.4",
                # Accept overflow and count it, so the audit sees any slot overflow.
                "SIM_ENFORCE_CONCURRENCY": "false",
                "SIM_PER_KEY_CONCURRENCY": str(cap),
            },
            extra_env={
                "GENBUS_API_ALLOW_ANONYMOUS": "true",
                "GENBUS_DISPATCHER_LEASE_S": "3",
                "GENBUS_API_RECONCILE_INTERVAL_S": "2",
                **extra_env,
            },
        )

    def stop(self) -> None:
        for part in (self.system, self.nats, self.postgres):
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

    async def post_one(self, attempts: int = 200) -> str:
        """POST one generation, retrying through outages with the same Idempotency-Key."""
        key = uuid.uuid4().hex
        body = {
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": f"fault run {key[:8]}"},
        }
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

    async def post_load(self, count: int, duration_s: float) -> None:
        interval = duration_s / count
        tasks = []
        for _ in range(count):
            tasks.append(asyncio.create_task(self.post_one()))
            await asyncio.sleep(interval)  # pacing of the offered load
        await asyncio.gather(*tasks)

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

    async def status_counts(self) -> dict[str, int]:
        conn = await asyncpg.connect(self.postgres.dsn_for("genbus"))
        try:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM api.generations GROUP BY 1")
        finally:
            await conn.close()
        return {r["status"]: r["n"] for r in rows}

    async def generation_rows(self) -> dict[str, str]:
        conn = await asyncpg.connect(self.postgres.dsn_for("genbus"))
        try:
            rows = await conn.fetch("SELECT id::text AS id, status FROM api.generations")
        finally:
            await conn.close()
        return {r["id"]: r["status"] for r in rows}

    async def slots_in_use(self) -> int:
        conn = await asyncpg.connect(self.postgres.dsn_for("genbus"))
        try:
            value = await conn.fetchval(
                "SELECT count(*) FROM dispatcher.dispatch_jobs "
                "WHERE state IN ('claimed', 'submitted')"
            )
        finally:
            await conn.close()
        return int(value)

    async def completed_outcomes(self) -> dict[str, set[str]]:
        """Every completed event in the stream, read independently: generation → statuses."""
        nc = await nats.connect(self.nats.url)
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
                    outcomes[event["generation_id"]].add(event["status"])
                await sub.unsubscribe()
        finally:
            await nc.close()
        return outcomes

    async def unsettled_messages(self) -> dict[str, tuple[int, int]]:
        """Consumers with messages still pending or unacked: (num_pending, num_ack_pending)."""
        nc = await nats.connect(self.nats.url)
        try:
            js = nc.jetstream()
            result = {}
            for spec in CONSUMERS:
                info = await js.consumer_info(GENERATIONS_STREAM.name, spec.durable)
                if info.num_pending or info.num_ack_pending:
                    result[spec.durable] = (info.num_pending, info.num_ack_pending)
            return result
        finally:
            await nc.close()

    async def dead_letters(self) -> int:
        nc = await nats.connect(self.nats.url)
        try:
            info = await nc.jetstream().stream_info(DEAD_LETTER_STREAM.name)
            return int(info.state.messages)
        finally:
            await nc.close()

    async def sim_stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.system.sim_url) as client:
            stats: dict[str, Any] = (await client.get("/_sim/stats")).json()
            return stats


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
