"""Tracing switched on for this test process, with spans kept in memory."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genbus.runtime.tracing import configure_tracing

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    configure_tracing("tests", exporter=_EXPORTER)
    return _EXPORTER
