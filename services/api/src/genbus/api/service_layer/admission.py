"""Admission control: refuse new generations quickly (429) while the backlog is past its bound,
instead of accepting them into minutes of queueing.

The backlog is read from the database in the background (`run_backlog_refresher`, one query
per replica every `admission_refresh_s`), never per request; to it, this replica adds the
generations it created itself that the read did not count, so a burst cannot overshoot the
bound by much. Which those are is exact, not guessed from timing: each creation knows the id
of the transaction that wrote it, each read the snapshot it counted in, and a creation is
added only while the last read's snapshot does not see it (a creation committed before a read
but reported after it began is not counted twice). A request is checked against that estimate
in memory: a refusal costs no database access.

`Retry-After` is how long the backlog should take to drain below the bound at the rate it has
recently drained (smoothed), clamped to 1..60 s; 60 s when it is not draining at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from genbus.api.adapters.backlog import Backlog
from genbus.api.domain.errors import Overloaded, RetryLater, TooManyPending
from genbus.api.service_layer.metrics import API_METRICS
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

MIN_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 60.0
#: Weight of the newest sample in the smoothed drain rates.
DRAIN_SMOOTHING = 0.3
#: A capped count stops at this many times its bound (its cost stays bounded; past it, the
#: drain is not visible and `Retry-After` is the maximum).
COUNT_CAP_FACTOR = 2


def retry_after_s(excess: float, drain_per_s: float | None) -> float:
    """Seconds until `excess` items have drained at `drain_per_s`, clamped to 1..60."""
    if drain_per_s is None or drain_per_s <= 0:
        return MAX_RETRY_AFTER_S
    return min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, math.ceil(excess / drain_per_s)))


class Refusal(NamedTuple):
    #: `pending`, `outbox` or `user_pending` (the label of the refusals counter).
    reason: str
    error: RetryLater


@dataclass(frozen=True)
class Bounds:
    """0 disables a bound."""

    pending: int
    outbox: int
    pending_per_user: int

    @property
    def enabled(self) -> bool:
        return bool(self.pending or self.outbox or self.pending_per_user)


class AdmissionGate:
    """The backlog estimate of this replica and the decision made against it."""

    def __init__(self, bounds: Bounds, clock: Callable[[], float], *, stale_after_s: float) -> None:
        self.bounds = bounds
        self._clock = clock
        self._stale_after_s = stale_after_s
        self._base: Backlog | None = None
        self._observed_at = 0.0
        self._sample_started_at = 0.0
        #: This replica's creations the last read did not count: transaction id -> user.
        self._unseen: dict[int, str] = {}
        self._unseen_by_user = Counter[str]()
        #: Creations so far, and as they stood when the read in flight / the last read began
        #: (the drain rate adds what was created between two reads).
        self._created = 0
        self._created_at_sample = 0
        self._created_at_observed = 0
        self.pending_drain: float | None = None
        self.outbox_drain: float | None = None
        for kind, bound in (("pending", bounds.pending), ("outbox", bounds.outbox)):
            API_METRICS.api_backlog_limit.labels(kind).set(bound)

    # -- the refresher's side

    def begin_sample(self) -> None:
        """A read of the backlog starts."""
        self._sample_started_at = self._clock()
        self._created_at_sample = self._created

    def observe(self, backlog: Backlog) -> None:
        """The read begun by `begin_sample` returned `backlog`."""
        previous, previous_at = self._base, self._observed_at
        created = self._created_at_sample - self._created_at_observed
        if previous is not None:
            elapsed = self._sample_started_at - previous_at
            if elapsed > 0:
                self.pending_drain = _smoothed(
                    self.pending_drain, (previous.pending - backlog.pending + created) / elapsed
                )
                self.outbox_drain = _smoothed(
                    self.outbox_drain, (previous.outbox - backlog.outbox + created) / elapsed
                )
        self._base = backlog
        self._observed_at = self._sample_started_at
        self._created_at_observed = self._created_at_sample
        for transaction_id in [t for t in self._unseen if backlog.snapshot.sees(t)]:
            self._forget(transaction_id)
        pending, outbox = self.estimate()
        API_METRICS.api_backlog.labels("pending").set(pending)
        API_METRICS.api_backlog.labels("outbox").set(outbox)
        API_METRICS.api_backlog_drain_rate.labels("pending").set(self.pending_drain or 0.0)
        API_METRICS.api_backlog_drain_rate.labels("outbox").set(self.outbox_drain or 0.0)

    def _forget(self, transaction_id: int) -> None:
        user_id = self._unseen.pop(transaction_id)
        self._unseen_by_user[user_id] -= 1
        if not self._unseen_by_user[user_id]:
            del self._unseen_by_user[user_id]

    # -- the request's side

    def admitted(self, user_id: str, transaction_id: int) -> None:
        """This replica created a generation for `user_id`, committed by `transaction_id`."""
        if not self.bounds.enabled:
            return
        self._created += 1
        if self._base is not None and self._base.snapshot.sees(transaction_id):
            return  # the last read already counted it
        self._unseen[transaction_id] = user_id
        self._unseen_by_user[user_id] += 1

    @property
    def has_estimate(self) -> bool:
        """Whether the backlog has been read at least once."""
        return self._base is not None

    def estimate(self) -> tuple[int, int]:
        """(pending, outbox) as last read plus what this replica created since."""
        if self._base is None:
            return 0, 0
        created = len(self._unseen)
        return self._base.pending + created, self._base.outbox + created

    def check(self, user_id: str) -> Refusal | None:
        """Why a new generation of `user_id` must wait (its `error` to raise), else None.

        With no estimate (none read yet, or the database unreachable for a while) every
        request is admitted: the request itself then meets the database's state.
        """
        base = self._base
        if base is None or self._clock() - self._observed_at > self._stale_after_s:
            return None
        pending, outbox = self.estimate()
        b = self.bounds
        if b.outbox and outbox >= b.outbox:
            return Refusal(
                "outbox",
                Overloaded(
                    "the service is overloaded (events are not being delivered); "
                    "retry after Retry-After",
                    retry_after_s(outbox - b.outbox + 1, self.outbox_drain),
                ),
            )
        if b.pending and pending >= b.pending:
            return Refusal(
                "pending",
                Overloaded(
                    "the service is overloaded (too many generations waiting); "
                    "retry after Retry-After",
                    retry_after_s(pending - b.pending + 1, self.pending_drain),
                ),
            )
        if b.pending_per_user:
            mine = base.pending_by_user.get(user_id, 0) + self._unseen_by_user[user_id]
            if mine >= b.pending_per_user:
                # Generations drain in about the order they came: this user's share of the rate.
                share = (
                    None
                    if self.pending_drain is None
                    else self.pending_drain * mine / max(pending, 1)
                )
                return Refusal(
                    "user_pending",
                    TooManyPending(
                        f"you have {mine} generations waiting (at most "
                        f"{b.pending_per_user}); retry after Retry-After",
                        retry_after_s(mine - b.pending_per_user + 1, share),
                    ),
                )
        return None

    @staticmethod
    def count_refusal(refusal: Refusal) -> None:
        API_METRICS.api_admission_refusals.labels(refusal.reason).inc()


def _smoothed(previous: float | None, sample: float) -> float:
    sample = max(0.0, sample)
    if previous is None:
        return sample
    return (1 - DRAIN_SMOOTHING) * previous + DRAIN_SMOOTHING * sample


def count_caps(bounds: Bounds) -> tuple[int | None, int | None]:
    """How far the pending and outbox counts need to go (None: no cap, a full count)."""
    pending = None if bounds.pending_per_user else max(1, COUNT_CAP_FACTOR * bounds.pending)
    return pending, max(1, COUNT_CAP_FACTOR * bounds.outbox)


async def run_backlog_refresher(
    gate: AdmissionGate,
    read: Callable[[], Awaitable[Backlog]],
    *,
    interval_s: float,
    stop: asyncio.Event,
) -> None:
    """Refresh `gate`'s estimate every `interval_s` until `stop` is set; failures are logged
    and retried (a stale estimate stops refusing, see `AdmissionGate.check`)."""
    if not gate.bounds.enabled:
        return
    while not stop.is_set():
        gate.begin_sample()
        try:
            gate.observe(await read())
        except Exception as exc:
            log.warning("backlog read failed, retrying", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
