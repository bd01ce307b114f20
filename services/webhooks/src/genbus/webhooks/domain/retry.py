"""When a failed delivery is tried again, and when an endpoint has failed for long enough."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Seconds to wait after the 1st, 2nd, ... failed try (5 s, 5 min, 30 min, 2 h, 5 h, then 10 h
#: three times): about 37.6 hours in all, over 30 hours even with every delay jittered down, so
#: a receiver that is down for a day still gets every event.
DEFAULT_SCHEDULE_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential-ish backoff from a schedule, jittered by +/- `jitter` of each delay."""

    schedule_s: tuple[float, ...] = DEFAULT_SCHEDULE_S
    jitter: float = 0.2

    def next_delay_s(self, failed_tries: int, rng: random.Random | None = None) -> float | None:
        """The wait after `failed_tries` failures (>= 1); None when the schedule is spent."""
        if failed_tries < 1 or failed_tries > len(self.schedule_s):
            return None
        base = self.schedule_s[failed_tries - 1]
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))


@dataclass(frozen=True)
class DisablePolicy:
    """An endpoint is disabled once `failures` tries in a row failed, the first of them at least
    `period_s` ago (a short outage does not disable it; a persistent one does)."""

    failures: int = 20
    period_s: float = 24 * 3600.0

    def should_disable(
        self, consecutive_failures: int, failing_since: datetime | None, now: datetime
    ) -> bool:
        if consecutive_failures < self.failures or failing_since is None:
            return False
        return now - failing_since >= timedelta(seconds=self.period_s)

    def reason(self, consecutive_failures: int, last_error: str) -> str:
        return (
            f"disabled after {consecutive_failures} failed deliveries in a row "
            f"over at least {self.period_s:g} s; last: {last_error}"
        )[:500]
