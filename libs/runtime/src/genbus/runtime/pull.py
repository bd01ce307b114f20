"""Pulling a durable consumer's messages with nats-py directly: the lean consumer path.

FastStream's per-message machinery (its task groups, dependency injection, logging, telemetry
and Prometheus middlewares) cost ~10x what nats-py's own pull does, more than many handlers
themselves; `genbus.runtime.consumer` decides what happens to each message and needs none of it.
A `PullLoop` fetches up to `batch_size` messages at a time from its (provisioned) durable and
hands each to its `handle` coroutine:

- without `max_workers`, the messages of one pull are handled concurrently and all of them
  finish before the next pull (so that the runtime's group commit sees them together);
- with `max_workers` > 1, up to that many messages are in hand at once and more are pulled as
  soon as one finishes.

`GenbusBroker` (what `service.make_broker` returns) is a FastStream `NatsBroker` that starts its
pull loops after connecting and stops them, letting handlers in hand finish within the graceful
timeout, before it drains its connection: services start and stop it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from genbus.runtime.logging import get_logger

log = get_logger(__name__)

MessageHandler = Callable[[Msg], Awaitable[None]]
#: After a failed pull (NATS away, consumer missing) the loop waits this long before the next.
_RETRY_S = 0.5


class PullLoop:
    """One durable consumer pulled by one task; see the module doc."""

    def __init__(
        self,
        *,
        stream: str,
        subject: str,
        durable: str,
        config: ConsumerConfig,
        inbox_prefix: bytes,
        handle: MessageHandler,
        batch_size: int = 32,
        max_workers: int | None = None,
        fetch_timeout_s: float = 1.0,
    ) -> None:
        self.durable = durable
        self.subject = subject
        self.batch_size = batch_size
        #: None: each pull handled as a whole before the next.
        self.max_workers = max_workers if max_workers and max_workers > 1 else None
        self._stream = stream
        self._config = config
        self._inbox_prefix = inbox_prefix
        self._handle = handle
        self._fetch_timeout_s = fetch_timeout_s
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self._in_hand: set[asyncio.Task[None]] = set()
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def start(self, connection: Client) -> None:
        js = connection.jetstream()
        self._subscription = await js.pull_subscribe(
            self.subject,
            durable=self.durable,
            stream=self._stream,
            config=self._config,
            inbox_prefix=self._inbox_prefix,
        )
        self._running = True
        self._task = asyncio.create_task(self._run(), name=f"pull {self.durable}")

    async def stop(self, graceful_timeout_s: float) -> None:
        """No more pulls; handlers in hand get `graceful_timeout_s` to finish, then are
        cancelled (their messages are redelivered after the ack wait)."""
        self._running = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._in_hand:
            _, late = await asyncio.wait(set(self._in_hand), timeout=graceful_timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _run(self) -> None:
        while self._running:
            want = self.batch_size
            if self.max_workers is not None:
                while len(self._in_hand) >= self.max_workers:
                    await asyncio.wait(set(self._in_hand), return_when=asyncio.FIRST_COMPLETED)
                want = min(want, self.max_workers - len(self._in_hand))
            messages = await self._pull(want)
            if not messages:
                continue
            # Each message in a task of its own, all started in the same loop iteration.
            tasks = [self._spawn(message) for message in messages]
            if self.max_workers is None:
                # `wait`, not `gather`: stopping the loop must not cancel handlers in hand.
                await asyncio.wait(tasks)

    async def _pull(self, want: int) -> list[Msg]:
        assert self._subscription is not None
        try:
            return await self._subscription.fetch(want, timeout=self._fetch_timeout_s)
        except (TimeoutError, NatsTimeoutError):
            return []
        except ConnectionClosedError:
            await asyncio.sleep(_RETRY_S)
            return []
        except Exception as exc:  # NATS reconnecting, consumer recreated: pull again soon
            log.warning("pull failed, retrying", consumer=self.durable, error=repr(exc))
            await asyncio.sleep(_RETRY_S)
            return []

    def _spawn(self, message: Msg) -> asyncio.Task[None]:
        task = asyncio.create_task(self._safely(message))
        self._in_hand.add(task)
        task.add_done_callback(self._in_hand.discard)
        return task

    async def _safely(self, message: Msg) -> None:
        try:
            await self._handle(message)
        except Exception as exc:  # an ack/nak that could not be sent: redelivered after ack wait
            log.error("message handling failed", consumer=self.durable, error=repr(exc))


class GenbusBroker(NatsBroker):
    """A FastStream NATS broker that also runs the lean pull loops registered on it."""

    def __init__(self, *args: Any, graceful_timeout: float = 15.0, **kwargs: Any) -> None:
        super().__init__(*args, graceful_timeout=graceful_timeout, **kwargs)
        self._graceful_timeout_s = graceful_timeout
        self._pull_loops: list[PullLoop] = []

    def add_pull_loop(self, loop: PullLoop) -> None:
        """Run `loop` from `start()` on (call before it)."""
        self._pull_loops.append(loop)

    @property
    def pull_loops(self) -> tuple[PullLoop, ...]:
        return tuple(self._pull_loops)

    async def start(self) -> None:
        await super().start()
        for loop in self._pull_loops:
            await loop.start(self.connection)

    async def stop(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        await asyncio.gather(*(loop.stop(self._graceful_timeout_s) for loop in self._pull_loops))
        await super().stop(exc_type, exc_val, exc_tb)
