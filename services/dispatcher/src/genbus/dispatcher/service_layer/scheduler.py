"""The dispatch loop: claim the best queued job a free slot can serve, submit it, repeat.

It runs until nothing is claimable, then sleeps until woken (a job arrived, a slot freed) or
until the next due time, so a freed slot is reused at once instead of on a timer tick.

While a submission is in flight its lease is renewed (`_keep_leases`, one statement for every
claim in hand). A claim whose lease another holder recovered, or that could not be renewed
for half a lease, is given up: its submission is cancelled before the lease can expire, so two
holders never call the provider for one job at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import UTC, datetime
from uuid import UUID

from genbus.dispatcher.adapters.repository import Contended, LeaseLost
from genbus.dispatcher.dependencies import Deps
from genbus.dispatcher.domain.model import ClaimedJob
from genbus.dispatcher.service_layer.held_claim import HeldClaim
from genbus.dispatcher.service_layer.metrics import DISPATCH_METRICS
from genbus.dispatcher.service_layer.submission import submit_claimed
from genbus.runtime.logging import get_logger

log = get_logger(__name__)


class Scheduler:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._held: dict[UUID, tuple[HeldClaim, asyncio.Task[None]]] = {}
        #: Why each cancelled submission was cancelled (it acts on it as it ends).
        self._given_up: dict[UUID, str] = {}
        self._keeper: asyncio.Task[None] | None = None

    @property
    def inflight(self) -> int:
        return len(self._held)

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set. In-hand submissions are left to `drain`."""
        deps = self._deps
        # It goes on renewing leases after `stop`, while `drain` waits for the submissions.
        self._keeper = asyncio.create_task(self._keep_leases(), name="lease-keeper")
        while not stop.is_set():
            deps.wake.clear()
            try:
                claimed = await self._claim_round(stop)
            except Exception as exc:
                log.warning("dispatch round failed", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            if claimed and self.inflight < deps.settings.max_inflight_submissions:
                continue
            timeout = await self._idle_timeout()
            waiters = [asyncio.ensure_future(deps.wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def drain(self, timeout_s: float) -> None:
        """Let in-hand submissions finish for up to `timeout_s`, then give the rest up.

        A given-up claim whose provider call had not started is requeued; one whose call may
        have reached the provider has its lease expired at once, so another replica takes it
        over now and resolves it (never resubmitting blindly).
        """
        tasks = [task for _, task in self._held.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=max(timeout_s, 0.0))
        for generation_id, (_, task) in list(self._held.items()):
            if not task.done():
                self._give_up(generation_id, "shutdown")
        remaining = [task for _, task in self._held.values()]
        if remaining:
            await asyncio.wait(remaining, timeout=1.0)  # one fenced write each
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper

    async def _claim_round(self, stop: asyncio.Event) -> int:
        deps = self._deps
        claimed = 0
        # Expired leases (a crashed or stalled holder's claims) are looked for until none is
        # left, once per round: not before every claim, where it would cost a statement each.
        recovering = True
        while self.inflight < deps.settings.max_inflight_submissions and not stop.is_set():
            # Taken before the lease is set: the holder's idea of its expiry is never late.
            started = time.monotonic()
            try:
                uow = deps.uow()
                async with uow:
                    claim = None
                    if recovering:
                        claim = await uow.jobs.recover_expired_lease(
                            deps.owner, deps.settings.lease_s
                        )
                        recovering = claim is not None
                    if claim is None:
                        claim = await uow.jobs.claim_next(
                            deps.owner, deps.settings.lease_s, skip_providers=self._full()
                        )
                    await uow.commit()
            except Contended:
                await asyncio.sleep(0.005)
                continue
            if claim is None:
                break
            if claim.in_doubt:
                log.warning(
                    "recovered a claim whose provider call may have reached the provider",
                    generation_id=str(claim.generation_id),
                )
            claimed += 1
            self._start(claim, started)
        return claimed

    def _full(self) -> set[str]:
        """Providers whose bulkhead is full: as many submissions in flight as they may have."""
        counts = Counter(held.claim.provider_id for held, _ in self._held.values())
        cap = self._deps.settings.max_inflight_per_provider
        return {provider for provider, n in counts.items() if n >= cap}

    def _start(self, claim: ClaimedJob, lease_from: float) -> None:
        held = HeldClaim(claim=claim, valid_until=lease_from + self._deps.settings.lease_s)
        task = asyncio.create_task(self._submit(held), name=f"submit-{claim.generation_id}")
        self._held[claim.generation_id] = (held, task)
        task.add_done_callback(lambda done: self._forget(claim.generation_id, done))

    def _forget(self, generation_id: UUID, task: asyncio.Task[None]) -> None:
        # This replica may have recovered the same job under a new claim meanwhile: keep that.
        entry = self._held.get(generation_id)
        if entry is not None and entry[1] is task:
            del self._held[generation_id]

    async def _submit(self, held: HeldClaim) -> None:
        generation_id = held.claim.generation_id
        try:
            await submit_claimed(self._deps, held)
        except asyncio.CancelledError:
            reason = self._given_up.pop(generation_id, None)
            if reason is None:
                raise
            await self._after_giving_up(held, reason)
        except Exception as exc:
            # The claim stays leased; when the lease expires it is recovered and resolved.
            log.error(
                "submission crashed; lease recovery will resolve it",
                generation_id=str(generation_id),
                error=repr(exc),
            )
        finally:
            self._given_up.pop(generation_id, None)
            self._deps.wake.set()

    def _give_up(self, generation_id: UUID, reason: str) -> None:
        entry = self._held.get(generation_id)
        if entry is None or entry[0].settled or entry[1].done():
            return
        held, task = entry
        DISPATCH_METRICS.leases_lost.labels(held.claim.provider_id, reason).inc()
        log.warning(
            "giving up a claim mid-submission", generation_id=str(generation_id), reason=reason
        )
        self._given_up[generation_id] = reason
        task.cancel()

    async def _after_giving_up(self, held: HeldClaim, reason: str) -> None:
        """Hand a given-up claim on. Only on shutdown: otherwise it is no longer ours."""
        if reason != "shutdown":
            return
        claim = held.claim
        try:
            uow = self._deps.uow()
            async with uow:
                if held.call_started:
                    await uow.jobs.expire_lease(claim)
                else:
                    await uow.jobs.requeue(claim, 0.0, {"code": "dispatcher_shutdown"})
                await uow.commit()
        except LeaseLost:
            pass
        except Exception as exc:
            # The lease expires by itself; the next holder resolves the job then.
            log.warning("could not hand the claim on", error=repr(exc))

    async def _keep_leases(self) -> None:
        """Renew the leases of every claim in hand; give up those lost or unrenewable."""
        settings = self._deps.settings
        interval = settings.lease_s / 4
        while True:
            await asyncio.sleep(interval)
            held = [h for h, task in self._held.values() if not h.settled and not task.done()]
            if not held:
                continue
            sent_at = time.monotonic()
            try:
                uow = self._deps.uow()
                async with uow:
                    renewed: set[UUID] | None = await uow.jobs.renew_leases(
                        [h.claim for h in held], settings.lease_s
                    )
                    await uow.commit()
            except Exception as exc:
                log.warning("lease renewal failed", error=repr(exc))
                renewed = None
            now = time.monotonic()
            for h in held:
                generation_id = h.claim.generation_id
                if renewed is None:
                    # Stop well before the lease can expire and be recovered by another holder.
                    if h.valid_until - now < 2 * interval:
                        self._give_up(generation_id, "unrenewable")
                elif generation_id in renewed:
                    h.valid_until = sent_at + settings.lease_s
                elif not h.settled:
                    self._give_up(generation_id, "recovered")

    async def _idle_timeout(self) -> float:
        idle = self._deps.settings.idle_tick_s
        try:
            uow = self._deps.uow()
            async with uow:
                wake_at = await uow.jobs.next_wake_at()
        except Exception:
            return idle
        if wake_at is None:
            return idle
        return max(0.0, min(idle, (wake_at - datetime.now(UTC)).total_seconds()))
