"""One generation, one trace: HTTP → api → NATS → dispatcher → provider HTTP → NATS → poller →
provider HTTP → NATS → dispatcher and api. Fails if the context is dropped anywhere."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from tests.integration.observability.conftest import OneProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TERMINAL = {"completed", "failed", "cancelled"}


async def _create_and_finish(one: OneProcess) -> str:
    response = await one.api.post(
        "/api/v1/generations",
        json={
            "operation_type": "text_to_video",
            "provider_id": "sim",
            "params": {"prompt": "one trace"},
        },
    )
    assert response.status_code == 201, response.text
    gid: str = response.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        body = (await one.api.get(f"/api/v1/generations/{gid}")).json()
        if body["status"] in TERMINAL:
            assert body["status"] == "completed", body
            return gid
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


def _attr(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {}).get(key)


async def _wait_for_spans(spans: InMemorySpanExporter, gid: str) -> list[ReadableSpan]:
    """The api's completed handler may still be finishing when the status reads completed."""
    deadline = time.monotonic() + 10
    while True:
        ours = [s for s in spans.get_finished_spans() if _attr(s, "genbus.generation_id") == gid]
        consumers = {_attr(s, "genbus.consumer") for s in ours}
        if {"api-completed", "dispatcher-completed"} <= consumers or time.monotonic() > deadline:
            return list(spans.get_finished_spans())
        await asyncio.sleep(0.1)


async def test_one_trace_id_across_api_dispatcher_and_poller(
    one_process: OneProcess, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    gid = await _create_and_finish(one_process)
    finished = await _wait_for_spans(spans, gid)

    # The HTTP request that created it is where the trace starts.
    (post,) = [
        s
        for s in finished
        if s.kind is SpanKind.SERVER
        and _attr(s, "http.route") == "/api/v1/generations"
        and _attr(s, "http.request.method") in ("POST", None)
        and s.parent is None
    ]
    trace_id = post.context.trace_id

    # Every span that names the generation is in that one trace.
    ours = [s for s in finished if _attr(s, "genbus.generation_id") == gid]
    by_trace: dict[int, list[str]] = defaultdict(list)
    for span in ours:
        by_trace[span.context.trace_id].append(span.name)
    assert set(by_trace) == {trace_id}, dict(by_trace)

    # ... and that trace has each service's part of the generation's life.
    consumers = {_attr(s, "genbus.consumer") for s in ours}
    assert {
        "dispatcher-requested",
        "poller-submitted",
        "api-submitted",
        "api-completed",
        "dispatcher-completed",
    } <= consumers, consumers
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    services = {_attr(s, "genbus.service") for s in in_trace}
    assert {"api", "dispatcher", "poller"} <= services, services
    assert any(s.name == "dispatch submit" for s in in_trace)
    # Provider HTTP calls (httpx instrumentation) of the dispatcher and the poller.
    provider_calls = [
        f"{_attr(s, 'http.request.method') or _attr(s, 'http.method')} "
        f"{_attr(s, 'url.full') or _attr(s, 'http.url')}"
        for s in in_trace
        if s.kind is SpanKind.CLIENT
    ]
    assert any(c.startswith("POST ") and c.endswith("/v1/jobs") for c in provider_calls), (
        provider_calls
    )
    assert any(c.startswith("GET ") and "/v1/jobs/" in c for c in provider_calls), provider_calls
    # Each published event is a PRODUCER span of the same trace.
    published = {s.name for s in in_trace if s.kind is SpanKind.PRODUCER}
    assert any(n.startswith("generations.requested.") for n in published), published
    assert any(n.startswith("generations.submitted.") for n in published), published
    assert any(n.startswith("generations.completed.") for n in published), published


async def test_domain_metrics_move_with_a_generation(one_process: OneProcess) -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    submits = value("genbus_provider_calls_total", provider="sim", operation="submit", code="ok")
    polls = value("genbus_provider_calls_total", provider="sim", operation="status", code="ok")
    to_submit = value("genbus_requested_to_submitted_seconds_count", provider="sim")
    job = value("genbus_provider_job_seconds_count", provider="sim", status="completed")
    done = value("genbus_done_to_completed_seconds_count", provider="sim", status="completed")
    relayed = value("genbus_outbox_published_total", service="dispatcher")
    acked = value("genbus_consumer_messages_total", consumer="poller-submitted", outcome="acked")
    timed = value("genbus_consumer_message_seconds_count", consumer="poller-submitted")

    await _create_and_finish(one_process)

    assert (
        value("genbus_provider_calls_total", provider="sim", operation="submit", code="ok")
        == submits + 1
    )
    assert (
        value("genbus_provider_calls_total", provider="sim", operation="status", code="ok") > polls
    )
    assert value("genbus_requested_to_submitted_seconds_count", provider="sim") == to_submit + 1
    assert value("genbus_provider_job_seconds_count", provider="sim", status="completed") == job + 1
    assert (
        value("genbus_done_to_completed_seconds_count", provider="sim", status="completed")
        == done + 1
    )
    assert value("genbus_outbox_published_total", service="dispatcher") >= relayed + 1
    # Each consumer counts its messages by outcome and times them.
    assert value("genbus_consumer_messages_total", consumer="poller-submitted", outcome="acked") > (
        acked
    )
    assert value("genbus_consumer_message_seconds_count", consumer="poller-submitted") > timed
