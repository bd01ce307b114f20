"""Caps on live-status streams open at once: per API key, and per replica (in memory).

A stream takes a slot before it reads anything, and gives it back when it ends, however it
ends (its last event, its time limit, the client gone, an error). Past a cap: 429
`too_many_streams`, with `Retry-After` the time until the soonest of the streams in the way
reaches its time limit (clamped to 1..60 s; a stream often ends sooner).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable

from genbus.api.domain.errors import TooManyStreams
from genbus.api.service_layer.metrics import API_METRICS

MIN_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 60.0


class StreamSlot:
    """One open stream's place; `release()` may be called any number of times."""

    def __init__(self, owner: StreamSlots, key: Hashable | None, ends_at: float) -> None:
        self._owner = owner
        self.key = key
        self.ends_at = ends_at
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._owner._release(self)


class StreamSlots:
    def __init__(
        self,
        *,
        per_key: int,
        per_replica: int,
        max_stream_s: float,
        clock: Callable[[], float],
    ) -> None:
        """0 disables a cap."""
        self.per_key = per_key
        self.per_replica = per_replica
        self._max_stream_s = max_stream_s
        self._clock = clock
        self._by_key: dict[Hashable | None, set[StreamSlot]] = defaultdict(set)
        self._open = 0

    @property
    def open(self) -> int:
        return self._open

    def held_by(self, key: Hashable | None) -> int:
        return len(self._by_key.get(key, ()))

    def acquire(self, key: Hashable | None) -> StreamSlot:
        """A slot for a stream of `key` (None: anonymous, capped per replica only), or
        `TooManyStreams`."""
        now = self._clock()
        mine: set[StreamSlot] = self._by_key.get(key, set())
        if key is not None and self.per_key and len(mine) >= self.per_key:
            API_METRICS.api_sse_refusals.labels("key").inc()
            raise TooManyStreams(
                f"this API key already has {len(mine)} live-status streams open (at most "
                f"{self.per_key}); close one, or retry after Retry-After",
                self._retry_after(mine, now),
            )
        if self.per_replica and self._open >= self.per_replica:
            API_METRICS.api_sse_refusals.labels("replica").inc()
            everyone = itertools.chain.from_iterable(self._by_key.values())
            raise TooManyStreams(
                "this server has too many live-status streams open; retry after Retry-After",
                self._retry_after(everyone, now),
            )
        slot = StreamSlot(self, key, now + self._max_stream_s)
        self._by_key[key].add(slot)
        self._open += 1
        API_METRICS.api_sse_streams.set(self._open)
        return slot

    def _release(self, slot: StreamSlot) -> None:
        slots = self._by_key.get(slot.key)
        if slots is None or slot not in slots:
            return
        slots.discard(slot)
        if not slots:
            del self._by_key[slot.key]
        self._open -= 1
        API_METRICS.api_sse_streams.set(self._open)

    @staticmethod
    def _retry_after(slots: Iterable[StreamSlot], now: float) -> float:
        soonest = min((s.ends_at for s in slots), default=now + MAX_RETRY_AFTER_S)
        return min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, math.ceil(soonest - now)))
