"""Wiring: the one place that knows the concrete engine, broker, relay and catalog classes.

`ApiRuntime` is what the HTTP process runs: the outbox relay of its writes, live-status
notifications and feeds, admission control; with `GENBUS_API_ROLE=all` also the event
consumers (`consumers_runtime`), on an event loop of their own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from faststream.nats import NatsBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.api.adapters.backlog import Backlog, read_backlog
from genbus.api.adapters.notifications import ChangeNotifier
from genbus.api.adapters.object_store import SharedStore, StoredInputAccess
from genbus.api.adapters.providers import CapabilitiesCatalog
from genbus.api.adapters.tables import outbox
from genbus.api.asset_config import AssetSettings, UploadSettings
from genbus.api.config import ApiSettings
from genbus.api.consumers_runtime import TOPOLOGY, ConsumersThread, build_consumer_runtime
from genbus.api.domain.api_keys import Principal
from genbus.api.domain.limits import Tiers
from genbus.api.domain.rate_limit import TokenBuckets
from genbus.api.domain.requests import ProviderCatalog, RequestLimits
from genbus.api.entrypoints.archiver import ArchiveSettings
from genbus.api.service_layer.admission import (
    AdmissionGate,
    Bounds,
    count_caps,
    run_backlog_refresher,
)
from genbus.api.service_layer.intake import Policy
from genbus.api.service_layer.stream_slots import StreamSlots
from genbus.api.service_layer.unit_of_work import SqlUnitOfWork
from genbus.api.service_layer.user_feeds import UserFeeds
from genbus.api.service_layer.waiting import WaitSlots
from genbus.runtime.logging import get_logger
from genbus.runtime.metrics import METRICS
from genbus.runtime.outbox import OutboxRelay, StagedRow
from genbus.runtime.publisher import EventPublisher
from genbus.runtime.service import connect_and_bind, make_broker
from genbus.storage import StorageSettings

log = get_logger(__name__)

__all__ = ["TOPOLOGY", "ApiRuntime", "bootstrap"]
_READY_TIMEOUT_S = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class ApiRuntime:
    """Everything the api process runs: built by `bootstrap`, started by the HTTP lifespan."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        engine: AsyncEngine,
        broker: NatsBroker,
        catalog: ProviderCatalog,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.catalog = catalog
        self.clock = clock
        self.limits = RequestLimits(
            default_deadline=timedelta(seconds=settings.default_deadline_s),
            idempotency_ttl=timedelta(hours=settings.idempotency_ttl_h),
        )
        self.tiers = Tiers(settings.tiers, settings.default_tier)
        self.rate_limits = TokenBuckets(
            settings.rate_limit_per_s, settings.rate_limit_burst, time.monotonic
        )
        self.admission = AdmissionGate(
            Bounds(
                pending=settings.max_pending_generations,
                outbox=settings.max_outbox_backlog,
                pending_per_user=settings.max_pending_per_user,
            ),
            time.monotonic,
            stale_after_s=max(5.0, 5 * settings.admission_refresh_s),
        )
        self.streams = StreamSlots(
            per_key=settings.max_streams_per_key,
            per_replica=settings.max_streams_per_replica,
            max_stream_s=settings.sse_max_stream_s,
            clock=time.monotonic,
        )
        self.feeds = UserFeeds(self.uow, catch_up_s=settings.sse_catch_up_s)
        self.waits = WaitSlots(settings.max_waiting_requests)
        self.notifier = ChangeNotifier(self.feeds.wake)
        self.uploads = UploadSettings()
        self.asset_settings = AssetSettings()
        self.object_store = SharedStore(
            StorageSettings() if self.uploads.enabled or ArchiveSettings().enabled else None
        )
        self.stored_inputs = (
            StoredInputAccess(
                engine,
                self.object_store,
                margin=timedelta(seconds=self.asset_settings.input_url_margin_s),
                clock=clock,
            )
            if self.object_store.configured
            else None
        )
        self.relay: OutboxRelay | None = None
        self.consumers: ConsumersThread | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def policy(self, principal: Principal) -> Policy:
        """What applies to `principal`'s requests: its key's limits, and the price table."""
        limits = self.tiers.effective(principal.tier, principal.overrides)
        return Policy(limits=limits, prices=self.settings.prices)

    def uow(self, *, single_statement: bool = False) -> SqlUnitOfWork:
        """A fresh unit of work (one per request or message); `single_statement`: one whose
        only write is `add_generation`, without a transaction around it."""
        return SqlUnitOfWork(
            self.engine,
            outbox,
            TOPOLOGY,
            self._hand_over,
            after_commit=self.notifier.publish,
            single_statement=single_statement,
        )

    def reader(self) -> SqlUnitOfWork:
        """A fresh read-only unit of work without a transaction: for reads of one statement,
        or of several that need no common snapshot (a generation, then its queue standing)."""
        return SqlUnitOfWork(self.engine, outbox, TOPOLOGY, read_only=True)

    async def start(self) -> None:
        """Bind its JetStream consumers, start the relay and the backlog refresher, and (role
        `all`) the consumers on their own loop."""
        js = await connect_and_bind(self.broker, TOPOLOGY)
        self.relay = OutboxRelay(self.engine, outbox, EventPublisher(js, TOPOLOGY))
        await self.broker.start()
        await self.notifier.start(self.broker.connection)
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self.relay.run(), name="outbox-relay"),
            asyncio.create_task(
                run_backlog_refresher(
                    self.admission,
                    self._read_backlog,
                    interval_s=self.settings.admission_refresh_s,
                    stop=self._stop,
                ),
                name="backlog-refresher",
            ),
        ]
        if self.settings.role == "all":
            loop = asyncio.get_running_loop()

            def wake(user_id: str) -> None:
                loop.call_soon_threadsafe(self.feeds.wake, user_id)

            def hand_over(rows: Sequence[StagedRow]) -> None:
                loop.call_soon_threadsafe(self._hand_over, rows)

            self.consumers = ConsumersThread(
                build_consumer_runtime(
                    self.settings, clock=self.clock, relay=False, wake=wake, hand_over=hand_over
                )
            )
            await self.consumers.start()
        log.info("api started", role=self.settings.role)

    async def stop(self) -> None:
        """Stop the consumers, the background loops, then close the database pool.

        The relay stops first: it publishes over the broker's connection, which draining closes.
        Unpublished rows stay in the outbox for the next start.
        """
        if self.consumers is not None:
            try:
                await self.consumers.stop()
            except Exception as exc:
                log.warning("stopping the consumers failed", error=repr(exc))
            self.consumers = None
        self._stop.set()
        self.feeds.close()
        await self.notifier.stop()
        if self.relay is not None:
            self.relay.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_s)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        try:
            await self.object_store.close()
            await self.broker.stop()
        finally:
            await self.engine.dispose()
        log.info("api stopped")

    async def readiness(self) -> dict[str, bool]:
        """Whether Postgres answers a query and NATS is connected (each also in
        `genbus_dependency_up{service="api"}`). The api can serve with Postgres alone: writes
        go through the outbox, reads need only Postgres; NATS being down delays events only."""
        checks = {
            "postgres": await self._postgres_ready(),
            "nats": await self._nats_ready(),
        }
        for dependency, up in checks.items():
            METRICS.dependency_up.labels("api", dependency).set(1 if up else 0)
        return checks

    async def _nats_ready(self) -> bool:
        try:
            return bool(await self.broker.ping(timeout=_READY_TIMEOUT_S))
        except Exception:
            return False

    async def _postgres_ready(self) -> bool:
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def _read_backlog(self) -> Backlog:
        pending_cap, outbox_cap = count_caps(self.admission.bounds)
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            return await read_backlog(
                conn,
                pending_cap=pending_cap,
                outbox_cap=outbox_cap,
                by_user=bool(self.admission.bounds.pending_per_user),
            )

    def _hand_over(self, rows: Sequence[StagedRow]) -> None:
        if self.relay is not None:
            self.relay.hand_over(rows)


def bootstrap(settings: ApiSettings) -> ApiRuntime:
    """Build the runtime; nothing connects until `start()`."""
    return ApiRuntime(
        settings,
        engine=settings.db_engine(settings.database_url),
        broker=make_broker(settings.nats_url, "genbus-api"),
        catalog=CapabilitiesCatalog(),
    )
