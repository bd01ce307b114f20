"""Helpers of the dispatcher integration tests: the real scheduler and submission code, in this
process, against a real Postgres database and a real sim provider HTTP server.

No NATS: events the dispatcher decides are staged in its outbox (read back by the tests) and
the relay is never started; the poller's part ("the job ended") is played by `complete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.contracts import (
    SERVICES,
    CompletionStatus,
    GenerationCompleted,
    GenerationRequested,
    derive_event_id,
)
from genbus.devstack.ports import free_port
from genbus.dispatcher.adapters.accounts_store import AccountView
from genbus.dispatcher.adapters.tables import OUTBOX
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.service_layer import accounts, handlers
from genbus.dispatcher.service_layer.base_urls import PERMISSIVE
from genbus.dispatcher.service_layer.scheduler import Scheduler
from genbus.dispatcher.service_layer.unit_of_work import SqlUnitOfWork
from genbus.provider_sim import SimConfig, create_app
from genbus.providers import AdapterRegistry, CredentialCipher, Credentials
from genbus.runtime.outbox import OutboxRelay
from genbus.runtime.publisher import EventPublisher
from tests.waiting import eventually as eventually


@dataclass
class SimServer:
    """The sim provider served by uvicorn on a real port, in this event loop."""

    url: str
    client: httpx.AsyncClient

    async def configure(self, **knobs: Any) -> None:
        (await self.client.put("/_sim/config", json=knobs)).raise_for_status()

    async def stats(self) -> dict[str, Any]:
        response = await self.client.get("/_sim/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def key_stats(self, key: str) -> dict[str, Any]:
        keys: dict[str, Any] = (await self.stats())["keys"]
        return cast(dict[str, Any], keys.get(key, {"submissions": 0, "rejections": {}}))


@contextlib.asynccontextmanager
async def serve_sim(keys: list[str]) -> AsyncIterator[SimServer]:
    port = free_port()
    app = create_app(SimConfig(keys=keys, duration_s=0.2, duration_jitter_s=0.0, seed=1))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        try:
            yield SimServer(url, client)
        finally:
            server.should_exit = True
            await task


@dataclass
class Dispatcher:
    """The dispatcher's scheduler and submission path over `engine`, submitting to `sim`."""

    engine: AsyncEngine
    sim: SimServer
    settings: DispatcherSettings
    cipher: CredentialCipher = field(
        default_factory=lambda: CredentialCipher([CredentialCipher.generate_key()])
    )
    deps: Deps = field(init=False)

    def __post_init__(self) -> None:
        # The publisher only encodes (into the outbox); the relay that would send is not run.
        publisher = EventPublisher(cast(Any, None), SERVICES["dispatcher"])
        relay = OutboxRelay(self.engine, OUTBOX, publisher)
        self.deps = Deps(
            settings=self.settings,
            uow=lambda: SqlUnitOfWork(self.engine, publisher, relay),
            statement_uow=lambda: SqlUnitOfWork(
                self.engine, publisher, relay, single_statement=True
            ),
            adapters=AdapterRegistry(),
            cipher=self.cipher,
            owner=f"test-{uuid.uuid4().hex[:8]}",
        )

    async def add_account(
        self,
        label: str,
        key: str,
        *,
        max_concurrent: int = 4,
        priority: int = 0,
        daily_cap: int | None = None,
        provider_id: str = "sim",
        base_url: str | None = None,
    ) -> AccountView:
        """An account at `base_url` (default: the fixture's sim server)."""
        return await accounts.create_account(
            self.deps.uow(),
            self.cipher,
            accounts.NewAccount(
                provider_id=provider_id,
                label=label,
                credentials=Credentials(api_key=key),
                max_concurrent=max_concurrent,
                priority=priority,
                base_url=base_url or self.sim.url,
                daily_cap=daily_cap,
            ),
            policy=PERMISSIVE,
        )

    async def account(self, account_id: str) -> AccountView:
        return await accounts.get_account(self.deps.uow(), account_id)

    async def queue(
        self,
        count: int = 1,
        *,
        prompt: str = "a lighthouse at dusk",
        preferred_account_id: str | None = None,
        provider_id: str = "sim",
        together: bool = False,
        user_id: str = "tester",
        priority: int = 5,
        max_in_flight: int | None = None,
    ) -> list[UUID]:
        """Queue `count` generations as if their GenerationRequested arrived (one by one, or
        `together` as one pulled batch, in this order)."""
        ids = []
        batch: list[GenerationRequested] = []
        for _ in range(count):
            generation_id = uuid.uuid4()
            event = GenerationRequested(
                event_id=derive_event_id(generation_id, "generation.requested", 0),
                occurred_at=datetime.now(UTC),
                generation_id=generation_id,
                user_id=user_id,
                provider_id=provider_id,
                operation_type="text_to_video",
                params={"prompt": prompt},
                priority=priority,
                max_in_flight=max_in_flight,
                deadline_at=datetime.now(UTC) + timedelta(minutes=10),
                reproducible_hash="0" * 64,
                preferred_account_id=preferred_account_id,
            )
            if together:
                batch.append(event)
            else:
                await handlers.on_generations_requested(
                    [event], self.deps.uow(), wake=self.deps.wake.set
                )
            ids.append(generation_id)
        if batch:
            await handlers.on_generations_requested(batch, self.deps.uow(), wake=self.deps.wake.set)
        return ids

    async def events(self, count: int, *, user_id: str = "tester") -> list[GenerationRequested]:
        """`count` requests of `user_id`, not yet queued (see `ingest`)."""
        out = []
        for _ in range(count):
            generation_id = uuid.uuid4()
            out.append(
                GenerationRequested(
                    event_id=derive_event_id(generation_id, "generation.requested", 0),
                    occurred_at=datetime.now(UTC),
                    generation_id=generation_id,
                    user_id=user_id,
                    provider_id="sim",
                    operation_type="text_to_video",
                    params={"prompt": "a lane"},
                    deadline_at=datetime.now(UTC) + timedelta(minutes=10),
                    reproducible_hash="0" * 64,
                )
            )
        return out

    async def ingest(self, events: list[GenerationRequested]) -> None:
        """Queue `events` as one pulled batch, as the dispatcher's consumer does."""
        await handlers.on_generations_requested(events, self.deps.uow(), wake=self.deps.wake.set)

    async def complete(self, generation_id: UUID) -> None:
        """What the poller reports when the provider job ended: the slot is released."""
        job = await self.job(generation_id)
        await handlers.on_generations_completed(
            [
                GenerationCompleted(
                    event_id=derive_event_id(generation_id, "generation.completed", job["attempt"]),
                    occurred_at=datetime.now(UTC),
                    generation_id=generation_id,
                    user_id=job["user_id"],
                    provider_id=job["provider_id"],
                    operation_type="text_to_video",
                    status=CompletionStatus.COMPLETED,
                    asset={"url": "https://cdn.example.com/x.mp4", "media_type": "video/mp4"},
                    attempt=job["attempt"],
                    account_id=job["account_id"],
                    provider_job_id=job["provider_job_id"],
                ),
            ],
            self.deps.uow(),
            wake=self.deps.wake.set,
            unfollowed_slot_hold_s=self.deps.settings.unfollowed_slot_hold_s,
        )

    async def job(self, generation_id: UUID) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT * FROM dispatcher.dispatch_jobs WHERE generation_id = :g"),
                    {"g": generation_id},
                )
            ).one()
        return dict(row._mapping)

    async def jobs(self, ids: list[UUID]) -> list[dict[str, Any]]:
        return [await self.job(g) for g in ids]

    async def states(self, ids: list[UUID]) -> list[str]:
        return [job["state"] for job in await self.jobs(ids)]

    async def published(self) -> list[dict[str, Any]]:
        """The events staged in the outbox, decoded."""
        async with self.engine.connect() as conn:
            query = text("SELECT subject, payload FROM dispatcher.outbox ORDER BY id")
            rows = (await conn.execute(query)).all()
        return [{"subject": r.subject, **json.loads(r.payload)} for r in rows]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Scheduler]:
        """The scheduler's dispatch loop, running until the block ends."""
        scheduler = Scheduler(self.deps)
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        try:
            yield scheduler
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await scheduler.drain(self.settings.shutdown_grace_s)
            await self.deps.adapters.aclose()
            self.deps.adapters = AdapterRegistry()


async def cool_down_until(engine: AsyncEngine, account_id: str) -> datetime | None:
    async with engine.connect() as conn:
        value = await conn.scalar(
            text("SELECT cooldown_until FROM dispatcher.provider_accounts WHERE id = :a"),
            {"a": account_id},
        )
    return cast(datetime | None, value)


async def claim_once(engine: AsyncEngine) -> Any:
    """One claim round as the scheduler does it, committed (for ranking tests)."""
    uow = SqlUnitOfWork(engine)
    async with uow:
        claim = await uow.jobs.claim_next("test", 30.0)
        await uow.commit()
        return claim
