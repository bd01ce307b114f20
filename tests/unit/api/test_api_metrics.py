"""The api's own metrics: a generation entering a status is counted once per call."""

from __future__ import annotations

from prometheus_client import REGISTRY

from genbus.api.service_layer.metrics import record_generation_status


def test_a_transition_is_counted_by_provider_and_status() -> None:
    labels = {"provider": "metrics-test", "status": "completed"}
    before = REGISTRY.get_sample_value("genbus_generation_transitions_total", labels) or 0.0
    record_generation_status("metrics-test", "completed")
    after = REGISTRY.get_sample_value("genbus_generation_transitions_total", labels)
    assert after == before + 1
