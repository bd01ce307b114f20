"""Per-key count of unfinished jobs, cheap to query: a heap of end times pruned lazily."""

from __future__ import annotations

import heapq


class UnfinishedJobs:
    """Jobs of one API key that were accepted and have not yet ended (or been cancelled).

    A job is unfinished on [accepted, end) whether or not anyone polls it. `now` must never go
    backwards between calls.
    """

    def __init__(self) -> None:
        self._ends: list[tuple[float, str]] = []
        self._cancelled: set[str] = set()  # still in _ends, ended early

    def add(self, job_id: str, end_at: float) -> None:
        heapq.heappush(self._ends, (end_at, job_id))

    def cancel(self, job_id: str) -> None:
        """Mark a job still unfinished at the current time as ended now."""
        self._cancelled.add(job_id)

    def count(self, now: float) -> int:
        ends = self._ends
        while ends and ends[0][0] <= now:
            _, job_id = heapq.heappop(ends)
            self._cancelled.discard(job_id)
        return len(ends) - len(self._cancelled)
