"""Percentiles, summaries and per-second time series of measured values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100), linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """count, mean, p50, p90, p99, max of `values` x `scale` (e.g. 1000 for seconds → ms)."""
    scaled = [v * scale for v in values]
    if not scaled:
        return {"count": 0}
    return {
        "count": len(scaled),
        "mean": sum(scaled) / len(scaled),
        "p50": percentile(scaled, 50),
        "p90": percentile(scaled, 90),
        "p99": percentile(scaled, 99),
        "max": max(scaled),
    }


def rate_series(times: Iterable[float], start: float, end: float, bin_s: float = 1.0) -> list[int]:
    """How many of `times` fall in each `bin_s` bin from `start` to `end`."""
    bins = max(1, math.ceil((end - start) / bin_s))
    counts = [0] * bins
    for t in times:
        index = int((t - start) // bin_s)
        if 0 <= index < bins:
            counts[index] += 1
    return counts


def percentile_series(
    points: Iterable[tuple[float, float]],
    start: float,
    end: float,
    qs: Sequence[float] = (50, 90, 99),
    bin_s: float = 1.0,
    scale: float = 1.0,
) -> dict[str, list[float | None]]:
    """Per bin of `bin_s`, the percentiles `qs` of the values of `(time, value)` points."""
    bins = max(1, math.ceil((end - start) / bin_s))
    grouped: list[list[float]] = [[] for _ in range(bins)]
    for t, value in points:
        index = int((t - start) // bin_s)
        if 0 <= index < bins:
            grouped[index].append(value * scale)
    return {f"p{q:g}": [percentile(group, q) if group else None for group in grouped] for q in qs}


def slope_per_s(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope (units per second) of `(time, value)` samples; 0 with < 2 samples."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / var
