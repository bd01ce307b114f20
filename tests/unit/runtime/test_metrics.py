"""Domain metrics helpers: provider calls by code, status gauges that drain to zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from genbus.providers import RateLimited
from genbus.runtime.metrics import (
    METRICS,
    observe_since,
    provider_call,
    record_generation_status,
    set_generation_counts,
)


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


def test_generation_gauges_drain_to_zero() -> None:
    set_generation_counts({"queued": 3, "running": 1})
    set_generation_counts({"running": 2}, statuses=("queued", "running", "completed"))
    assert _value("genbus_generations", status="queued") == 0
    assert _value("genbus_generations", status="running") == 2
    assert _value("genbus_generations", status="completed") == 0
    before = _value("genbus_generation_transitions_total", provider="m1", status="completed")
    record_generation_status("m1", "completed")
    assert (
        _value("genbus_generation_transitions_total", provider="m1", status="completed")
        == before + 1
    )


def test_observe_since_measures_from_an_aware_timestamp() -> None:
    elapsed = observe_since(
        METRICS.requested_to_submitted, datetime.now(UTC) - timedelta(seconds=2), "m2"
    )
    assert 2.0 <= elapsed < 5.0
    assert _value("genbus_requested_to_submitted_seconds_count", provider="m2") == 1
    # A clock skewed into the future never observes a negative duration.
    assert (
        observe_since(METRICS.requested_to_submitted, datetime.now(UTC) + timedelta(1), "m2") == 0
    )
