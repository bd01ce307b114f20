"""The timeline of every generation, read independently of the services.

Three JetStream ordered consumers (on `REQUESTED`, `SUBMITTED` and `COMPLETED` wildcards from
genbus.contracts) that start at the stream's end, plus the load generator's own POST times.

Clocks: every timestamp is wall-clock UTC seconds (`time.time()` here; the services' `occurred_at`
is `datetime.now(UTC)`), comparable because every process runs on this one machine. Pacing and
timeouts use the monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy

from genbus.contracts import COMPLETED, GENERATIONS_STREAM, REQUESTED, SUBMITTED
from genbus.runtime.nats_client import connect_nats


@dataclass
class Trace:
    """One generation's timeline (wall-clock UTC seconds; None when not seen)."""

    generation_id: str
    #: The bench sent its POST / received the 201.
    post_at: float | None = None
    accepted_at: float | None = None
    #: `occurred_at` of the GenerationRequested event (the API's commit).
    requested_at: float | None = None
    #: `occurred_at` of the first GenerationSubmitted (the dispatcher, after the provider's 201).
    submitted_at: float | None = None
    account_id: str | None = None
    #: `occurred_at` of GenerationCompleted: the poller saw the provider's job end. The sim does
    #: not expose its jobs' end times; where a scenario knows the job length it estimates the
    #: true end as `submitted_at + length` instead (see the utilisation scenario).
    provider_done_at: float | None = None
    #: The GenerationCompleted message arrived at the bench.
    completed_at: float | None = None
    status: str | None = None
    #: From the databases after the run (Postgres `now()`, same machine clock): the dispatcher
    #: queued the job (`dispatch_jobs.created_at`), the API applied the terminal status
    #: (`generations.updated_at`, what a user reading the API sees).
    ingested_at: float | None = None
    api_done_at: float | None = None

    def latency(self) -> float | None:
        if self.post_at is None or self.completed_at is None:
            return None
        return self.completed_at - self.post_at


@dataclass(frozen=True)
class Submission:
    """One GenerationSubmitted event (a provider slot taken)."""

    generation_id: str
    account_id: str
    attempt: int
    at: float


def _occurred(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"]).timestamp()


class Recorder:
    """Collects events into `traces`; lets clients wait for one generation's completion."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.traces: dict[str, Trace] = {}
        self.submissions: list[Submission] = []
        self.completed_count = 0
        self.duplicates = 0
        self._waiters: dict[str, asyncio.Future[Trace]] = {}
        self._nc: Client | None = None
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._nc = await connect_nats(self.nats_url, max_reconnect_attempts=-1)
        js = self._nc.jetstream()
        for binding, handler in (
            (REQUESTED, self._on_requested),
            (SUBMITTED, self._on_submitted),
            (COMPLETED, self._on_completed),
        ):
            sub = await js.subscribe(
                binding.wildcard,
                stream=GENERATIONS_STREAM.name,
                cb=handler,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
            )
            self._subs.append(sub)

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
        for waiter in self._waiters.values():
            waiter.cancel()
        self._waiters.clear()

    async def __aenter__(self) -> Recorder:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def trace(self, generation_id: str) -> Trace:
        trace = self.traces.get(generation_id)
        if trace is None:
            trace = self.traces[generation_id] = Trace(generation_id)
        return trace

    def posted(self, generation_id: str, post_at: float, accepted_at: float) -> Trace:
        trace = self.trace(generation_id)
        trace.post_at = post_at
        trace.accepted_at = accepted_at
        return trace

    async def completion(self, generation_id: str, timeout: float) -> Trace | None:
        """Wait until `generation_id`'s GenerationCompleted arrived; None after `timeout`."""
        trace = self.trace(generation_id)
        if trace.completed_at is not None:
            return trace
        waiter = self._waiters.get(generation_id)
        if waiter is None:
            waiter = self._waiters[generation_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            self._waiters.pop(generation_id, None)
            return None

    # -- message handlers (kept light: the bench shares the machine with what it measures)

    async def _on_requested(self, msg: Msg) -> None:
        event = json.loads(msg.data)
        trace = self.trace(event["generation_id"])
        if trace.requested_at is None:
            trace.requested_at = _occurred(event)

    async def _on_submitted(self, msg: Msg) -> None:
        event = json.loads(msg.data)
        at = _occurred(event)
        gid = event["generation_id"]
        self.submissions.append(Submission(gid, event["account_id"], event["attempt"], at))
        trace = self.trace(gid)
        if trace.submitted_at is None:
            trace.submitted_at = at
            trace.account_id = event["account_id"]

    async def _on_completed(self, msg: Msg) -> None:
        arrived = time.time()
        event = json.loads(msg.data)
        trace = self.trace(event["generation_id"])
        if trace.completed_at is not None:
            self.duplicates += 1
            return
        trace.completed_at = arrived
        trace.provider_done_at = _occurred(event)
        trace.status = event["status"]
        self.completed_count += 1
        waiter = self._waiters.pop(trace.generation_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(trace)
