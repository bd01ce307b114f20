"""A token bucket per API key: `rate` requests per second on average, bursts up to `burst`."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """In-process buckets (so the limit holds per replica); the least recently used are forgotten
    beyond `max_buckets`, which only ever gives a forgotten key a full bucket again."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float],
        *,
        max_buckets: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def take(self, key: Hashable) -> float | None:
        """Spend one token of `key`'s bucket: None if allowed, else seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(seconds)))
