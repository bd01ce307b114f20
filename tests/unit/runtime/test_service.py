"""Brokers: several NATS servers from one NATS_URL; measured and traced subscribers."""

from __future__ import annotations

import pytest
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import CollectorRegistry

from genbus.runtime.service import make_broker, nats_servers


def test_nats_url_may_list_a_cluster() -> None:
    assert nats_servers("nats://a:4222") == ["nats://a:4222"]
    assert nats_servers("nats://a:4222, nats://b:4222,,nats://c:4222") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    with pytest.raises(ValueError, match="no server"):
        nats_servers(" , ")


def test_broker_connects_to_every_server_with_metrics_and_tracing() -> None:
    broker = make_broker("nats://a:1,nats://b:2", "genbus-x-1", registry=CollectorRegistry())
    assert broker._connection_kwargs["servers"] == ["nats://a:1", "nats://b:2"]
    kinds = {type(m) for m in broker.config.broker_middlewares}
    assert {NatsPrometheusMiddleware, NatsTelemetryMiddleware} <= kinds
