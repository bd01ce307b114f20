"""When to poll a provider job again.

The first poll is immediate (the submitted event's first delivery). After that the delay grows
with the job's age, a fixed fraction of it, so a job is seen done at most about that fraction of
its run time late, whatever its length: a 2 s job is noticed within ~0.2 s, and a slot is handed
to the next job that much sooner. Bounded below and above, and stretched by a provider's hint.

A provider that reports progress lets us do better: its progress so far, over the job's age,
says when the job should end, and the next poll is then (if that is sooner), just after it.
A wrong estimate only costs a poll; the age fraction stays the upper bound.
"""

from __future__ import annotations

#: Share of the job's age waited before the next poll.
AGE_FRACTION = 0.1
#: Polled this long after the end the progress predicts (relative, and at least absolute).
ETA_MARGIN_FRACTION = 0.05
ETA_MARGIN_S = 0.005
#: Never sooner than this, whatever the estimate.
MIN_DELAY_S = 0.01


def next_poll_delay(
    age_s: float,
    initial_s: float,
    max_s: float,
    provider_hint_s: float | None = None,
    progress: float | None = None,
) -> float:
    """Delay before polling again a job submitted `age_s` seconds ago that is not done yet."""
    delay = min(max_s, max(initial_s, age_s * AGE_FRACTION))
    if progress is not None and 0.0 < progress < 1.0 and age_s > 0.0:
        remaining = age_s * (1.0 - progress) / progress
        expected_end = remaining * (1.0 + ETA_MARGIN_FRACTION) + ETA_MARGIN_S
        delay = max(MIN_DELAY_S, min(delay, expected_end))
    if provider_hint_s is not None and provider_hint_s > 0:
        delay = min(max_s * 4, max(delay, provider_hint_s))
    return delay
