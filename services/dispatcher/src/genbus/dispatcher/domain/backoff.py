"""Retry delays: exponential with full jitter, capped."""

from __future__ import annotations

import random


def backoff_delay(
    tries: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Delay before try number `tries + 1` (tries ≥ 1), in [0, min(max, base·2^(tries-1))]."""
    ceiling = min(max_s, base_s * (2.0 ** max(tries - 1, 0)))
    return (rng or random).uniform(ceiling / 2, ceiling)
