"""Retry delays: exponential with jitter, capped."""

from __future__ import annotations

import random


def backoff_delay(
    tries: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Delay before try `tries + 1` (tries ≥ 1): uniform in [c/2, c].

    The ceiling c = min(max_s, base_s · 2^(tries-1)) grows exponentially. Half of it is kept so
    retries really back off; the random half spreads competing replicas apart.
    """
    ceiling = min(max_s, base_s * (2.0 ** max(tries - 1, 0)))
    return (rng or random).uniform(ceiling / 2, ceiling)
