"""Poll delays: a tenth of the job's age, bounded, stretched by the provider's hint."""

from __future__ import annotations

import pytest

from genbus.poller.domain.schedule import next_poll_delay


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [(0.0, 0.05), (0.3, 0.05), (1.0, 0.1), (2.0, 0.2), (15.0, 1.5), (600.0, 2.0)],
)
def test_delay_is_a_tenth_of_the_age_within_bounds(age_s: float, expected: float) -> None:
    assert next_poll_delay(age_s, 0.05, 2.0) == pytest.approx(expected)


def test_a_job_is_seen_done_within_about_a_tenth_of_its_run_time() -> None:
    for run_time in (0.5, 2.0, 10.0):
        t = 0.0
        while t < run_time:
            t += next_poll_delay(t, 0.05, 2.0)
        assert t - run_time <= max(0.05, run_time * 0.1 * 1.1)


def test_provider_hint_stretches_the_delay_but_is_bounded() -> None:
    assert next_poll_delay(1.0, 0.05, 2.0, provider_hint_s=3.0) == 3.0
    assert next_poll_delay(1.0, 0.05, 2.0, provider_hint_s=3600.0) == 8.0
    assert next_poll_delay(10.0, 0.05, 2.0, provider_hint_s=0.01) == 1.0
