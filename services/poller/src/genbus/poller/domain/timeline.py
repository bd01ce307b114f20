"""Where a submitted job stands in time: how old it is, and whether its deadline has passed."""

from __future__ import annotations

from datetime import datetime

from genbus.contracts import GenerationSubmitted


def age_s(event: GenerationSubmitted, now: datetime) -> float:
    """Seconds since the provider accepted the job (0 if the clocks disagree)."""
    return max((now - event.occurred_at).total_seconds(), 0.0)


def is_overdue(event: GenerationSubmitted, now: datetime) -> bool:
    """True once the job's deadline has passed: it must end now, whatever else is wrong."""
    return now >= event.deadline_at
