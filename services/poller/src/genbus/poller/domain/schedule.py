"""When to poll a provider job again: immediately first, then backing off, honouring hints."""

from __future__ import annotations


def next_poll_delay(
    deliveries: int, initial_s: float, max_s: float, provider_hint_s: float | None = None
) -> float:
    """Delay after the `deliveries`-th poll found the job unfinished."""
    delay = min(max_s, initial_s * (2.0 ** max(deliveries - 1, 0)))
    if provider_hint_s is not None and provider_hint_s > 0:
        delay = min(max_s * 4, max(delay, provider_hint_s))
    return delay
