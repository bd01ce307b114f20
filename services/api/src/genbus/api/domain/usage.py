"""Usage over a time range: generations created and their costs, per user, account or provider."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class UsageRow:
    """One group's totals. `key` is the user, account or provider id (an account is None for
    generations never submitted)."""

    key: str | None
    generations: int
    completed: int
    estimated_cost: float
    actual_cost: float
    #: How many of the generations have an actual cost (the provider reported one).
    with_actual_cost: int


def total(rows: Sequence[UsageRow]) -> UsageRow:
    """The sum of `rows` (key None)."""
    return UsageRow(
        key=None,
        generations=sum(r.generations for r in rows),
        completed=sum(r.completed for r in rows),
        estimated_cost=round(sum(r.estimated_cost for r in rows), 6),
        actual_cost=round(sum(r.actual_cost for r in rows), 6),
        with_actual_cost=sum(r.with_actual_cost for r in rows),
    )
