"""Figures measured by the fault, cluster and benchmark suites, shown at the end of the run."""

from __future__ import annotations

FIGURES: list[str] = []


def report(line: str) -> None:
    """Keep `line` for the run's summary (pytest captures ordinary prints of passing tests)."""
    FIGURES.append(line)
    print(line)
