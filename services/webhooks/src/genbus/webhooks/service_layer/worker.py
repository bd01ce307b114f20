"""The delivery worker: claims due deliveries, sends each once, records the attempt and what
follows (done, retried later on the schedule, or failed), and counts it on the endpoint.

Several replicas run it at once: a claim is a lease (SKIP LOCKED, `lease_s`), and an attempt
is recorded only by the lease's holder.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from genbus.runtime.logging import get_logger
from genbus.webhooks.domain.model import DeliveryStatus, DueDelivery, SendResult
from genbus.webhooks.domain.retry import DisablePolicy, RetryPolicy
from genbus.webhooks.service_layer.metrics import WEBHOOK_METRICS
from genbus.webhooks.service_layer.ports import AttemptRecord, SecretCipher, Sender, Store

log = get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryWorker:
    store: Store
    sender: Sender
    cipher: SecretCipher
    owner: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    disable: DisablePolicy = field(default_factory=DisablePolicy)
    lease_s: float = 60.0
    batch_size: int = 32
    poll_interval_s: float = 1.0
    clock: Callable[[], datetime] = _utcnow
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop`; woken early by `wake` (a new event came in)."""
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception as exc:
                log.warning("delivery pass failed", error=repr(exc))
                sent = 0
            if sent:
                continue  # there may be more due right now
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, self.wake), self.poll_interval_s)

    async def run_once(self) -> int:
        """Claim a batch of due deliveries and attempt each (concurrently); how many."""
        due = await self.store.claim_due(self.owner, self.clock(), self.lease_s, self.batch_size)
        if due:
            outcomes = await asyncio.gather(
                *(self._attempt(d) for d in due), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    # Not recorded (the database, most likely): tried again when its lease ends.
                    log.warning("webhook attempt not recorded", error=repr(outcome))
        return len(due)

    async def _attempt(self, due: DueDelivery) -> None:
        try:
            secret = self.cipher.decrypt(due.secret_encrypted)
        except Exception:
            result = SendResult(
                None, "secret_unreadable: the signing secret cannot be decrypted", 0
            )
        else:
            result = await self.sender.send(due.url, due.webhook_id, secret, due.payload)
        now = self.clock()
        record = self.next_state(due, result, now)
        if not await self.store.record_attempt(record, self.disable):
            log.warning("lease lost before the attempt was recorded", delivery_id=str(due.id))
            return
        WEBHOOK_METRICS.attempts.labels(_outcome(record, result)).inc()
        log.info(
            "webhook attempt",
            delivery_id=str(due.id),
            endpoint_id=str(due.endpoint_id),
            status_code=result.status_code,
            error=result.error,
            outcome=record.status.value,
        )

    def next_state(self, due: DueDelivery, result: SendResult, now: datetime) -> AttemptRecord:
        """What follows an attempt: done, retried after the schedule's next delay, or failed."""
        tries = due.tries + (0 if result.succeeded else 1)
        status = DeliveryStatus.SUCCEEDED
        next_at: datetime | None = None
        if not result.succeeded:
            delay = self.retry.next_delay_s(tries)
            if delay is None:
                status = DeliveryStatus.FAILED
            else:
                status = DeliveryStatus.PENDING
                next_at = now + timedelta(seconds=delay)
        return AttemptRecord(
            delivery_id=due.id,
            endpoint_id=due.endpoint_id,
            owner=self.owner,
            attempted_at=now,
            result=result,
            status=status,
            tries=tries,
            next_attempt_at=next_at,
        )


def _outcome(record: AttemptRecord, result: SendResult) -> str:
    if result.succeeded:
        return "succeeded"
    return "exhausted" if record.status is DeliveryStatus.FAILED else "retrying"


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
