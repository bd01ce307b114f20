"""When to poll a provider job again.

The first poll is immediate (the submitted event's first delivery). After that the delay grows
with the job's age, a fixed fraction of it, so a job is seen done at most about that fraction of
its run time late, whatever its length: a 2 s job is noticed within ~0.2 s, and a slot is handed
to the next job that much sooner. Bounded below and above, and stretched by a provider's hint.
"""

from __future__ import annotations

#: Share of the job's age waited before the next poll.
AGE_FRACTION = 0.1


def next_poll_delay(
    age_s: float, initial_s: float, max_s: float, provider_hint_s: float | None = None
) -> float:
    """Delay before polling again a job submitted `age_s` seconds ago that is not done yet."""
    delay = min(max_s, max(initial_s, age_s * AGE_FRACTION))
    if provider_hint_s is not None and provider_hint_s > 0:
        delay = min(max_s * 4, max(delay, provider_hint_s))
    return delay
