"""A genbus system scaled out on one machine: a 3-node NATS JetStream cluster with every stream
replicated 3 times, two replicas of each service, and a load balancer's view of the two apis.

It reuses the fault harness's load generator and audit queries (`tests.faults.harness`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from nats.js.api import ConsumerConfig, DeliverPolicy

from genbus.contracts import COMPLETED, GENERATIONS_STREAM
from genbus.devstack.nats import NatsCluster, NatsServer
from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import GenbusSystem
from genbus.runtime.nats_client import connect_nats
from tests.faults.harness import FaultRun

REPLICAS = {"api": 2, "dispatcher": 2, "poller": 2}
STREAM_REPLICAS = 3


@dataclass
class ClusterRun(FaultRun):
    """`FaultRun` on a NATS cluster; `nats` is always a member that is up (for the audit)."""

    cluster: NatsCluster = field(init=False)
    down: set[str] = field(default_factory=set)

    def start(self) -> None:
        self.cluster = NatsCluster(self.base / "nats", size=3)
        self.cluster.start()
        self.nats = self.cluster.nodes[0]
        self.postgres = PostgresServer(self.base / "pg", log_path=self.base / "pg.log", fast=True)
        self.postgres.start()
        self.postgres.create_database("genbus")
        self.system = GenbusSystem(
            self.system_config(self.cluster.url, GENBUS_STREAM_REPLICAS=str(STREAM_REPLICAS))
        )
        self.system.start()

    def stop(self) -> None:
        for part in (self.system, self.cluster, self.postgres):
            try:
                part.stop()
            except Exception as exc:  # keep stopping the rest
                print(f"stop failed: {exc!r}")

    # -- faults

    async def stream_leader(self) -> NatsServer:
        """The cluster member leading the GENERATIONS stream's Raft group."""
        nc = await connect_nats(self._live_urls())
        try:
            info = await nc.jetstream().stream_info(GENERATIONS_STREAM.name)
        finally:
            await nc.close()
        assert info.cluster is not None
        (leader,) = [n for n in self.cluster.nodes if n.config.server_name == info.cluster.leader]
        return leader

    async def kill(self, name: str) -> None:
        """SIGKILL a service process (by process name) or a NATS member (by server name)."""
        nodes = {n.config.server_name: n for n in self.cluster.nodes}
        target: Any = nodes.get(name) or self.system.processes[name]
        await asyncio.to_thread(target.kill)
        self.down.add(name)
        self.kills.append(name)
        if name in nodes:
            self.nats = next(n for n in self.cluster.nodes if n.config.server_name not in self.down)

    def _live_urls(self) -> list[str]:
        return [n.admin_url for n in self.cluster.nodes if n.config.server_name not in self.down]

    def _api_urls(self) -> list[str]:
        names = [n for n in self.system.processes if n.split("-")[0] == "api"]
        return [self.system.http_url(n) for n in names if n not in self.down]

    # -- load: round-robin over the live apis, as a load balancer would

    async def post_one(self, attempts: int = 200) -> str:
        key = uuid.uuid4().hex
        body = {
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": f"cluster run {key[:8]}"},
        }
        async with httpx.AsyncClient(timeout=5.0) as client:
            for attempt in range(attempts):
                urls = self._api_urls()
                url = urls[(int(key[:8], 16) + attempt) % len(urls)]
                try:
                    response = await client.post(
                        f"{url}/api/v1/generations", json=body, headers={"Idempotency-Key": key}
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

    # -- audit

    async def scrape(self, name: str) -> dict[str, float]:
        """A process's `/metrics`, as `name{labels}` → value."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(f"{self.system.http_url(name)}/metrics")).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def work_per_replica(self) -> dict[str, int]:
        """What each service process did, from its JSON log: generations created (api),
        submissions (dispatcher), provider jobs seen ending (poller)."""
        done_by = {
            "api": '"generation created"',
            "dispatcher": '"submitted"',
            "poller": '"job ended"',
        }
        work = {}
        for name in self.system.processes:
            service = name.split("-")[0]
            if service in done_by:
                log = (self.base / "run" / "logs" / f"{name}.log").read_text()
                work[name] = log.count(done_by[service])
        return work

    async def completed_event_counts(self) -> Counter[str]:
        """How many completed events the stream stores per generation (each must have one)."""
        nc = await connect_nats(self._live_urls())
        counts: Counter[str] = Counter()
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
                    counts[json.loads(msg.data)["generation_id"]] += 1
                await sub.unsubscribe()
        finally:
            await nc.close()
        return counts

    async def stream_replication(self) -> dict[str, tuple[int, int]]:
        """Per stream: (configured replicas, peers besides the leader)."""
        nc = await connect_nats(self._live_urls())
        try:
            js = nc.jetstream()
            result = {}
            for stream in await js.streams_info():
                peers = len(stream.cluster.replicas or []) if stream.cluster else 0
                result[stream.config.name or "?"] = (stream.config.num_replicas or 1, peers)
            return result
        finally:
            await nc.close()
