"""The dispatch loop: claim the best queued job a free slot can serve, submit it, repeat.

It runs until nothing is claimable, then sleeps until woken (a job arrived, a slot freed) or
until the next due time, so a freed slot is reused at once instead of on a timer tick.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from genbus.dispatcher.adapters import repository as repo
from genbus.dispatcher.domain.model import ClaimedJob
from genbus.dispatcher.service_layer.deps import Deps
from genbus.dispatcher.service_layer.submission import submit_claimed
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


class Scheduler:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set, then let in-hand submissions finish."""
        deps = self._deps
        while not stop.is_set():
            deps.wake.clear()
            try:
                claimed = await self._claim_round()
            except Exception as exc:
                log.warning("dispatch round failed", error=repr(exc))
                claimed = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            if claimed and len(self._inflight) < deps.settings.max_inflight_submissions:
                continue
            timeout = await self._idle_timeout()
            waiters = [asyncio.ensure_future(deps.wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        await self.drain()

    async def drain(self) -> None:
        """Wait for submissions in hand; their leases cover whatever does not finish."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=self._deps.settings.shutdown_grace_s)

    async def _claim_round(self) -> int:
        deps = self._deps
        claimed = 0
        # Expired leases (a crashed replica's claims) are looked for until none is left, once
        # per round: not before every claim, where it would cost a statement each time.
        recovering = True
        while len(self._inflight) < deps.settings.max_inflight_submissions:
            try:
                async with deps.uow() as uow:
                    claim = None
                    if recovering:
                        claim = await repo.recover_expired_lease(
                            uow.conn, deps.owner, deps.settings.lease_s
                        )
                        recovering = claim is not None
                    if claim is None:
                        claim = await repo.claim_next(uow.conn, deps.owner, deps.settings.lease_s)
            except repo.Contended:
                await asyncio.sleep(0.005)
                continue
            if claim is None:
                break
            claimed += 1
            self._start(claim)
        return claimed

    def _start(self, claim: ClaimedJob) -> None:
        task = asyncio.create_task(self._submit(claim), name=f"submit-{claim.generation_id}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _submit(self, claim: ClaimedJob) -> None:
        try:
            await submit_claimed(self._deps, claim)
        except Exception as exc:
            # The claim stays leased; when the lease expires it is recovered and resubmitted
            # with the same idempotency key.
            log.error(
                "submission crashed; lease recovery will retry",
                generation_id=str(claim.generation_id),
                error=repr(exc),
            )
        finally:
            self._deps.wake.set()

    async def _idle_timeout(self) -> float:
        idle = self._deps.settings.idle_tick_s
        try:
            async with self._deps.engine.connect() as conn:
                wake_at = await repo.next_wake_at(conn)
        except Exception:
            return idle
        if wake_at is None:
            return idle
        return max(0.0, min(idle, (wake_at - datetime.now(UTC)).total_seconds()))
