"""OpenTelemetry tracing: one trace follows a generation across HTTP, NATS and provider HTTP.

Off by default. `configure_tracing` turns it on from the standard variables:
`OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`; comma-separated for several) and, when that
is unset, any `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` means `otlp`
(OTLP over HTTP/protobuf). `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER` and `OTEL_SDK_DISABLED` work as everywhere else.

The trace context travels in W3C `traceparent` message headers: FastStream's telemetry middleware
continues it when a message is consumed; `EventPublisher` and the outbox put it on what we
publish (an outbox row stores the context of the transaction that wrote it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind

from genbus.runtime.logging import get_logger

TRACEPARENT = "traceparent"
log = get_logger(__name__)
_tracer = trace.get_tracer("genbus")
_provider: TracerProvider | None = None


def exporters_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporter names the OTEL_* variables ask for (empty: tracing stays off)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n]
    if not names and (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    unknown = sorted(set(names) - {"otlp", "console", "none"})
    if unknown:
        raise ValueError(f"unsupported OTEL_TRACES_EXPORTER value(s): {', '.join(unknown)}")
    return [n for n in names if n != "none"]


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure_tracing(service_name: str, *, exporter: SpanExporter | None = None) -> bool:
    """Install the tracer provider of this process when asked to; returns whether tracing is on.

    `service_name` is the short name (`api`, `dispatcher`, `poller`); the resource's
    `service.name` is `genbus-<service_name>` unless `OTEL_SERVICE_NAME` says otherwise.
    Call it once at start-up, before the service builds its broker and HTTP clients.
    `exporter` (tests) adds a synchronous exporter whatever the environment says. A second
    call adds exporters to the provider already installed.
    """
    global _provider
    processors = (
        [SimpleSpanProcessor(exporter)]
        if exporter is not None
        else [BatchSpanProcessor(_exporter(name)) for name in exporters_from_env()]
    )
    if not processors:
        return _provider is not None
    if _provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # e.g. set up by `opentelemetry-instrument`
            _provider = current
        else:
            name = f"genbus-{service_name}"
            attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": name}
            _provider = TracerProvider(resource=Resource.create(attributes))
            trace.set_tracer_provider(_provider)
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        # Every httpx client of this process: provider calls become child spans and carry
        # `traceparent` to the provider.
        HTTPXClientInstrumentor().instrument(tracer_provider=_provider)
        log.info("tracing on", service=service_name)
    for processor in processors:
        _provider.add_span_processor(processor)
    return True


def current_trace_headers() -> dict[str, str]:
    """The current trace context as message headers (empty when no span is active)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def with_trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` plus the current trace context, which replaces any context they carried."""
    carrier = dict(headers)
    propagate.inject(carrier)
    return carrier


@contextmanager
def continue_trace(
    name: str,
    headers: Mapping[str, str] | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A current span that continues the trace in `headers` (or the current one, if none)."""
    parent = (
        propagate.extract(dict(headers))
        if headers is not None and TRACEPARENT in headers
        else otel_context.get_current()
    )
    with _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as span:
        yield span


def annotate_span(**attributes: str | int | float | bool) -> None:
    """Set `genbus.<key>` attributes on the current span (a no-op when tracing is off)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({f"genbus.{k}": v for k, v in attributes.items()})
