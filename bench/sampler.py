"""Samplers that run beside a load phase: CPU and RSS of every process (psutil), and the
pipeline's backlog (JetStream consumers' pending messages, queued jobs, unpublished outbox rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import psutil
from nats.aio.client import Client as NatsClient

from genbus.contracts import CONSUMERS, GENERATIONS_STREAM
from genbus.devstack.system import OPTIONAL_SERVICES
from genbus.runtime.nats_client import connect_nats

_MB = 1024 * 1024
#: Keys of `ProcessSampler.mean_cpu` beside the process names.
OTHER_CPU = "other processes (not the stack)"
MACHINE_CPU = "machine (% of all cores)"


@dataclass
class ProcessSample:
    at: float
    #: CPU use since the previous sample, % of one core, per process name (its whole tree).
    cpu: dict[str, float]
    rss_mb: dict[str, float]
    #: Whole machine, % of all cores.
    machine_cpu: float
    #: CPU used by processes outside the stack and the bench (other work on the machine),
    #: % of one core.
    other_cpu: float


def _machine_busy_s() -> tuple[float, float]:
    """(busy CPU seconds over all cores, total CPU seconds) since boot."""
    times = psutil.cpu_times()
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


class ProcessSampler:
    """Samples each named process and its descendants every `interval_s`, in a thread.

    Names in `own_only` (default: the bench itself, whose descendants are the whole stack) count
    their own process only.
    """

    def __init__(
        self,
        pids: dict[str, int],
        interval_s: float = 1.0,
        own_only: frozenset[str] = frozenset({"bench"}),
    ) -> None:
        self.pids = dict(pids)
        self.interval_s = interval_s
        self.own_only = own_only
        self.samples: list[ProcessSample] = []
        self._roots = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._cpu_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = time.monotonic()
        self._machine_last = _machine_busy_s()

    def start(self) -> ProcessSampler:
        self._measure(first=True)
        self._thread = threading.Thread(target=self._loop, name="process-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling, after one last sample (so even a short phase has one)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
            self._measure(first=False)

    def __enter__(self) -> ProcessSampler:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._measure(first=False)

    def _members(self, name: str) -> list[psutil.Process]:
        root = self._roots[name]
        if name in self.own_only:
            return [root]
        try:
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _measure(self, *, first: bool) -> None:
        now = time.monotonic()
        cpu_s: dict[str, float] = {}
        rss: dict[str, float] = {}
        for name in self._roots:
            used = 0.0
            resident = 0
            for proc in self._members(name):
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        total = times.user + times.system
                        resident += proc.memory_info().rss
                except psutil.Error:
                    continue
                used += total - self._cpu_seen.get(proc.pid, 0.0)
                self._cpu_seen[proc.pid] = total
            cpu_s[name] = used
            rss[name] = resident / _MB
        busy, total = _machine_busy_s()
        machine_busy = busy - self._machine_last[0]
        machine_total = total - self._machine_last[1]
        self._machine_last = (busy, total)
        if first:
            self._last = now
            return
        elapsed = max(now - self._last, 1e-6)
        self._last = now
        ours = sum(cpu_s.values())
        self.samples.append(
            ProcessSample(
                at=time.time(),
                cpu={name: 100.0 * used / elapsed for name, used in cpu_s.items()},
                rss_mb=rss,
                machine_cpu=100.0 * machine_busy / machine_total if machine_total > 0 else 0.0,
                other_cpu=max(0.0, 100.0 * (machine_busy - ours) / elapsed),
            )
        )

    def mean_cpu(self, since: float = 0.0, until: float = float("inf")) -> dict[str, float]:
        """Mean CPU % of one core per process over the samples taken in [since, until]."""
        window = [s for s in self.samples if since <= s.at <= until]
        if not window:
            return {}
        names = window[0].cpu.keys()
        means = {name: sum(s.cpu.get(name, 0.0) for s in window) / len(window) for name in names}
        means[OTHER_CPU] = sum(s.other_cpu for s in window) / len(window)
        means[MACHINE_CPU] = sum(s.machine_cpu for s in window) / len(window)
        return means

    def max_rss(self) -> dict[str, float]:
        result: dict[str, float] = {}
        for sample in self.samples:
            for name, mb in sample.rss_mb.items():
                result[name] = max(result.get(name, 0.0), mb)
        return result

    def latest_rss(self) -> dict[str, float]:
        """RSS right now (a fresh measurement, not the last sample)."""
        rss: dict[str, float] = {}
        for name in self._roots:
            total = 0
            for proc in self._members(name):
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            rss[name] = total / _MB
        return rss

    def series(self, start: float) -> dict[str, Any]:
        return {
            "t": [round(s.at - start, 2) for s in self.samples],
            "cpu_percent": {
                name: [round(s.cpu.get(name, 0.0), 1) for s in self.samples] for name in self.pids
            },
            "rss_mb": {
                name: [round(s.rss_mb.get(name, 0.0), 1) for s in self.samples]
                for name in self.pids
            },
            "machine_cpu_percent": [round(s.machine_cpu, 1) for s in self.samples],
            "other_cpu_percent": [round(s.other_cpu, 1) for s in self.samples],
        }


_BACKLOG_SQL = {
    "queued_jobs": "SELECT count(*) FROM dispatcher.dispatch_jobs WHERE state = 'queued'",
    "api_outbox_unpublished": "SELECT count(*) FROM api.outbox WHERE published_at IS NULL",
    "dispatcher_outbox_unpublished": (
        "SELECT count(*) FROM dispatcher.outbox WHERE published_at IS NULL"
    ),
}


class BacklogProbe:
    """Every `interval_s`: each durable consumer's pending + unacked messages, queued dispatch
    jobs and unpublished outbox rows. Work in flight is part of it; growth over a steady load is
    the sign of a stage that cannot keep up."""

    def __init__(self, nats_url: str, database_url: str, interval_s: float = 1.0) -> None:
        self.nats_url = nats_url
        self.database_url = database_url
        self.interval_s = interval_s
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._task: asyncio.Task[None] | None = None
        self._nc: NatsClient | None = None
        self._db: asyncpg.Connection | None = None
        # The sampling loop and `wait_drained` share one connection: one query at a time.
        self._lock = asyncio.Lock()

    async def measure(self) -> dict[str, int]:
        async with self._lock:
            return await self._measure()

    async def _measure(self) -> dict[str, int]:
        values: dict[str, int] = {}
        assert self._nc is not None, "start() first"
        assert self._db is not None, "start() first"
        js = self._nc.jetstream()
        for spec in CONSUMERS:
            if spec.service in OPTIONAL_SERVICES:
                # Provisioned with the rest, but the bench's stack does not run this service:
                # its consumer only piles up and is no backlog of the pipeline measured.
                continue
            try:
                info = await js.consumer_info(GENERATIONS_STREAM.name, spec.durable)
            except Exception:
                continue
            values[spec.durable] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        for name, sql in _BACKLOG_SQL.items():
            try:
                values[name] = int(await self._db.fetchval(sql))
            except asyncpg.PostgresError:
                continue
        return values

    async def start(self) -> BacklogProbe:
        self._nc = await connect_nats(self.nats_url)
        self._db = await asyncpg.connect(self.database_url)
        self._task = asyncio.create_task(self._loop())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._nc is not None:
            await self._nc.close()
        if self._db is not None:
            await self._db.close()

    async def __aenter__(self) -> BacklogProbe:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            self.samples.append((time.time(), await self.measure()))
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    def totals(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, float]]:
        return [(t, float(sum(v.values()))) for t, v in self.samples if since <= t <= until]

    async def wait_drained(self, timeout_s: float, allowed: int = 0) -> bool:
        """Wait until the whole backlog is at most `allowed` (the pipeline is idle)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum((await self.measure()).values()) <= allowed:
                return True
            await asyncio.sleep(0.2)
        return False
