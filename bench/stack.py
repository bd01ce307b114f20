"""The stack under test: `LocalInfra` (NATS + Postgres, as `make run`) and one `GenbusSystem`
per system spec, each on a fresh database and a fresh JetStream stream.

Scenarios that need the same system (same accounts and sim behaviour) run one after another on
one started system; a scenario that needs another gets a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from nats.js.errors import NotFoundError

from genbus.contracts import ACCOUNT_DIRECTORY, DEAD_LETTER_STREAM, GENERATIONS_STREAM
from genbus.devstack.stack import LocalInfra
from genbus.devstack.system import AccountSeed, GenbusSystem, SystemConfig
from genbus.runtime.nats_client import connect_nats

#: The bench acts without an API key, and must not be throttled by the per-key request limit:
#: what it measures is the pipeline's capacity, not a client quota.
BENCH_ENV: Mapping[str, str] = {
    "GENBUS_API_ALLOW_ANONYMOUS": "true",
    "GENBUS_API_RATE_LIMIT_PER_S": "1000000",
    "GENBUS_API_RATE_LIMIT_BURST": "1000000",
}

SERVICES = ("api", "dispatcher", "poller")


@dataclass(frozen=True)
class SystemSpec:
    """What a scenario needs from the system: its provider accounts and sim behaviour."""

    name: str
    accounts: tuple[AccountSeed, ...]
    sim_env: Mapping[str, str] = field(default_factory=dict)
    #: Laid over `BENCH_ENV` for every service of the system.
    env: Mapping[str, str] = field(default_factory=dict)


def sim_accounts(count: int, slots: int) -> tuple[AccountSeed, ...]:
    return tuple(
        AccountSeed(f"bench-{i}", f"sim-key-{i}", max_concurrent=slots) for i in range(1, count + 1)
    )


def pipeline_spec() -> SystemSpec:
    """Instant provider jobs and more slots than the pipeline can fill: the pipeline's own
    overhead is all that is measured."""
    return SystemSpec(
        "pipeline",
        sim_accounts(4, 64),
        {"SIM_DURATION_S": "0", "SIM_DURATION_JITTER_S": "0"},
    )


def slots_spec(accounts: int, slots: int, job_s: float) -> SystemSpec:
    """Few slots and fixed-length jobs: how busy genbus keeps every provider slot."""
    return SystemSpec(
        "slots",
        sim_accounts(accounts, slots),
        {
            "SIM_DURATION_S": str(job_s),
            "SIM_DURATION_JITTER_S": "0",
            "SIM_PER_KEY_CONCURRENCY": str(slots),
        },
    )


@dataclass
class RunningSystem:
    spec: SystemSpec
    system: GenbusSystem
    infra: LocalInfra
    database_url: str

    @property
    def nats_url(self) -> str:
        """The privileged (provisioner's) URL: the bench reads streams and consumers."""
        return self.infra.nats.admin_url if self.infra.nats is not None else self.infra.nats_url

    @property
    def api_url(self) -> str:
        return self.system.api_url

    def pids(self) -> dict[str, int]:
        """Process ids by name: the system's processes, NATS, the Postgres postmaster, and us."""
        pids = {
            name: proc.pid
            for name, proc in self.system.processes.items()
            if proc.pid is not None and proc.is_running()
        }
        if self.infra.nats is not None and self.infra.nats.pid is not None:
            pids["nats"] = self.infra.nats.pid
        if self.infra.postgres is not None and self.infra.postgres.pid is not None:
            pids["postgres"] = self.infra.postgres.pid
        pids["bench"] = os.getpid()
        return pids


class BenchStack:
    """Infrastructure for the whole run and the current system; `system(spec)` swaps systems."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        # Cleared before the infrastructure is made: it writes its NATS PKI on construction.
        if base_dir.exists():
            shutil.rmtree(base_dir)
        self.infra = LocalInfra(base_dir / "infra")
        self.current: RunningSystem | None = None
        self._count = 0

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.infra.start()
        # This process's own NATS clients (recorder, sampler, resets) trust the local CA.
        os.environ.update({k: v for k, v in self.infra.env().items() if k.startswith("GENBUS_")})

    def stop(self) -> None:
        try:
            self._stop_system()
        finally:
            self.infra.stop()

    async def system(self, spec: SystemSpec) -> RunningSystem:
        """The running system for `spec`: the current one if it matches, else a fresh one."""
        if self.current is not None and self.current.spec == spec:
            return self.current
        self._stop_system()
        self._count += 1
        database_url = await self._fresh_database(f"bench_{self._count}_{spec.name}")
        await self.reset_jetstream()
        system = GenbusSystem(
            SystemConfig(
                base_dir=self.base_dir / f"system-{self._count}-{spec.name}",
                nats_url=self.infra.nats_url,
                database_url=database_url,
                accounts=spec.accounts,
                sim_env=dict(spec.sim_env),
                log_to_files=True,
                log_format="json",
                extra_env={**BENCH_ENV, **spec.env},
                nats_security=self.infra.nats_security,
            )
        )
        await asyncio.to_thread(system.start)
        self.current = RunningSystem(spec, system, self.infra, database_url)
        return self.current

    def retire(self) -> None:
        """Stop the current system (a scenario changed it beyond reuse)."""
        self._stop_system()

    def _stop_system(self) -> None:
        if self.current is not None:
            current, self.current = self.current, None
            current.system.stop()

    async def scratch_database(self, name: str) -> str:
        """A new, empty database of `name` on the bench's Postgres (no system uses it)."""
        return await self._fresh_database(name)

    async def _fresh_database(self, name: str) -> str:
        postgres = self.infra.postgres
        if postgres is None:  # an external DATABASE_URL: every system shares it
            return self.infra.database_url
        postgres.create_database(name)
        return postgres.dsn_for(name)

    @property
    def admin_nats_url(self) -> str:
        """The provisioner's URL: the bench's own clients read and reset streams."""
        return self.infra.nats.admin_url if self.infra.nats is not None else self.infra.nats_url

    async def reset_jetstream(self) -> None:
        """Drop the streams and the account directory, so no earlier system's messages or
        durable consumers reach the next one; the next system's start provisions them again."""
        nc = await connect_nats(self.admin_nats_url)
        try:
            js = nc.jetstream()
            for stream in (GENERATIONS_STREAM.name, DEAD_LETTER_STREAM.name):
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(stream)
            with contextlib.suppress(NotFoundError):
                await js.delete_key_value(ACCOUNT_DIRECTORY.bucket)
        finally:
            await nc.close()


async def count_rows(database_url: str, sql: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()
