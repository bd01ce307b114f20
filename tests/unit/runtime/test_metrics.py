"""Shared metrics helpers: provider calls by outcome code, durations from a timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from genbus.providers import RateLimited
from genbus.runtime.metrics import observe_since, provider_call


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_provider_calls_are_counted_by_outcome_code() -> None:
    ok = _value("genbus_provider_calls_total", provider="m1", operation="submit", code="ok")
    limited = _value(
        "genbus_provider_calls_total", provider="m1", operation="submit", code="rate_limited"
    )
    with provider_call("m1", "submit"):
        pass
    with pytest.raises(RateLimited), provider_call("m1", "submit"):
        raise RateLimited("slow down")
    with pytest.raises(TimeoutError), provider_call("m1", "submit"):
        raise TimeoutError
    assert (
        _value("genbus_provider_calls_total", provider="m1", operation="submit", code="ok")
        == ok + 1
    )
    assert (
        _value(
            "genbus_provider_calls_total", provider="m1", operation="submit", code="rate_limited"
        )
        == limited + 1
    )
    assert (
        _value(
            "genbus_provider_calls_total", provider="m1", operation="submit", code="TimeoutError"
        )
        >= 1
    )
    assert _value("genbus_provider_call_seconds_count", provider="m1", operation="submit") >= 3


def test_observe_since_measures_from_an_aware_timestamp() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("test_wait_seconds", "a test histogram", ["provider"], registry=registry)
    elapsed = observe_since(histogram, datetime.now(UTC) - timedelta(seconds=2), "m2")
    assert 2.0 <= elapsed < 5.0
    assert registry.get_sample_value("test_wait_seconds_count", {"provider": "m2"}) == 1
    # A clock skewed into the future never observes a negative duration.
    assert observe_since(histogram, datetime.now(UTC) + timedelta(1), "m2") == 0
