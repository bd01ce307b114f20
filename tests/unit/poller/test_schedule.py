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


def test_progress_brings_the_poll_to_just_after_the_expected_end() -> None:
    # Half done after 1.8 s: the end is expected at 3.6 s, later than the age fraction (0.18 s).
    assert next_poll_delay(1.8, 0.05, 2.0, progress=0.5) == pytest.approx(0.18)
    # 95 % done after 1.9 s: ~0.1 s left, sooner than the age fraction (0.19 s).
    delay = next_poll_delay(1.9, 0.05, 2.0, progress=0.95)
    assert 0.1 < delay < 0.12
    # Nearly done: soon, but never sooner than the floor.
    assert next_poll_delay(1.999, 0.05, 2.0, progress=0.9995) == pytest.approx(0.01)


def test_progress_without_information_changes_nothing() -> None:
    for progress in (None, 0.0, 1.0):
        assert next_poll_delay(2.0, 0.05, 2.0, progress=progress) == pytest.approx(0.2)


def test_a_job_with_linear_progress_is_seen_done_within_a_few_ms() -> None:
    for run_time in (0.5, 2.0, 10.0):
        t = 0.0
        polls = 0
        while t < run_time:
            progress = min(round(t / run_time, 3), 0.999)  # still running
            t += next_poll_delay(t, 0.05, 2.0, progress=progress)
            polls += 1
        assert t - run_time <= 0.011 + run_time * 0.006
        assert polls <= 60
