"""Tracing: off unless the OTEL_* variables ask; trace context carried in message headers."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from genbus.contracts import REQUESTED, SERVICES
from genbus.runtime.publisher import EventPublisher, OutgoingMessage
from genbus.runtime.tracing import (
    TRACEPARENT,
    annotate_span,
    continue_trace,
    current_trace_headers,
    exporters_from_env,
    with_trace_headers,
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            [],
        ),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_tracing_is_off_unless_asked(env: dict[str, str], expected: list[str]) -> None:
    assert exporters_from_env(env) == expected


def test_an_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="zipkin"):
        exporters_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_no_span_no_headers() -> None:
    assert current_trace_headers() == {}
    assert with_trace_headers({"a": "b"}) == {"a": "b"}


def test_a_span_continues_the_trace_in_headers(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("origin") as origin:
        headers = with_trace_headers({"Nats-Msg-Id": "x"})
    assert headers["Nats-Msg-Id"] == "x"
    assert f"{origin.get_span_context().trace_id:032x}" in headers[TRACEPARENT]
    # Later, elsewhere, with no span current: the work continues the stored trace.
    with continue_trace("later", headers, attributes={"k": "v"}) as later:
        annotate_span(generation_id="g-1")
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert later.get_span_context().trace_id == origin.get_span_context().trace_id
    assert finished["later"].parent is not None
    assert finished["later"].parent.span_id == origin.get_span_context().span_id
    assert finished["later"].attributes == {"k": "v", "genbus.generation_id": "g-1"}


class _FakeJetStream:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes, **kwargs: Any) -> None:
        self.published.append((subject, kwargs["headers"]))


async def test_a_publish_is_a_producer_span_of_the_message_trace(
    spans: InMemorySpanExporter,
) -> None:
    js = _FakeJetStream()
    publisher = EventPublisher(js, SERVICES["api"])  # type: ignore[arg-type]
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request:
        stored = with_trace_headers({"Nats-Msg-Id": "e-1"})  # as an outbox row keeps it
    subject = REQUESTED.subject("sim")
    await publisher.send(OutgoingMessage(subject, b"{}", stored))
    ((_, headers),) = js.published
    (publish,) = [s for s in spans.get_finished_spans() if s.name == f"{subject} publish"]
    assert publish.kind is SpanKind.PRODUCER
    assert publish.context.trace_id == request.get_span_context().trace_id
    assert publish.attributes is not None
    assert publish.attributes["genbus.service"] == "api"
    # The consumer's parent is the publish span.
    assert f"{publish.context.span_id:016x}" in headers[TRACEPARENT]
    assert headers["Nats-Msg-Id"] == "e-1"


def test_log_lines_inside_a_span_name_its_trace(spans: InMemorySpanExporter) -> None:
    from genbus.runtime.logging import _add_trace_ids

    assert _add_trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}
    with trace.get_tracer("tests").start_as_current_span("work") as span:
        line = _add_trace_ids(None, "info", {"event": "inside"})
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
