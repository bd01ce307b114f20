"""How fast a provider ends generations, as the estimated start uses it."""

from __future__ import annotations

import pytest

from genbus.api.adapters.queue_standing import turnover_rate


def test_jobs_in_flight_over_the_recent_time_per_job() -> None:
    assert turnover_rate(ended=3, span_s=60.0, job_s=2.0, flying=8) == pytest.approx(4.0)


def test_with_nothing_in_flight_the_recent_ends_over_the_time_since_the_first() -> None:
    assert turnover_rate(ended=10, span_s=5.0, job_s=2.0, flying=0) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("ended", "span_s", "job_s", "flying"),
    [(0, 0.0, 0.0, 5), (1, 3.0, 2.0, 0), (0, 0.0, 0.0, 0)],
    ids=["in flight, no end seen yet", "one end, none in flight", "nothing at all"],
)
def test_unknown_without_a_measured_job(
    ended: int, span_s: float, job_s: float, flying: int
) -> None:
    assert turnover_rate(ended=ended, span_s=span_s, job_s=job_s, flying=flying) is None
