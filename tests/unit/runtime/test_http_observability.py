"""`/metrics` on workers and the api: refreshed on scrape, requests counted by route template."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from genbus.runtime.http_server import service_app
from genbus.runtime.instrumentation import instrument_fastapi
from genbus.runtime.metrics import METRICS


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_worker_metrics_run_scrape_hooks_even_when_one_fails() -> None:
    calls: list[str] = []

    async def refresh() -> None:
        calls.append("refresh")
        METRICS.outbox_backlog.labels("scrape-test").set(7)

    async def broken() -> None:
        raise RuntimeError("database down")

    app = service_app({}, on_scrape=(broken, refresh))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://w"
    ) as client:
        body = (await client.get("/metrics")).text
        assert (await client.get("/healthz")).status_code == 200
    assert calls == ["refresh"]
    assert 'genbus_outbox_backlog{service="scrape-test"} 7.0' in body


async def test_instrumented_fastapi_serves_metrics_and_counts_by_route() -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    instrument_fastapi(app)
    before = _value(
        "genbus_http_requests_total", method="GET", route="/things/{thing_id}", status="200"
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        for thing_id in ("a", "b", "c"):
            assert (await client.get(f"/things/{thing_id}")).status_code == 200
        await client.get("/healthz")
        await client.get("/nowhere")
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "genbus_http_requests_total" in metrics.text
    assert (
        _value("genbus_http_requests_total", method="GET", route="/things/{thing_id}", status="200")
        == before + 3
    )
    assert _value("genbus_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert _value("genbus_http_requests_total", method="GET", route="/healthz", status="200") == 0
    assert "/metrics" not in app.openapi()["paths"]


async def test_worker_readiness_needs_every_check_and_records_each_dependency() -> None:
    nats_up = False

    async def nats_check() -> None:
        if not nats_up:
            raise ConnectionError("not connected to NATS")

    async def database_check() -> None:
        return None

    app = service_app({"nats": nats_check, "database": database_check}, service="ready-test")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://w"
    ) as client:
        down = await client.get("/readyz")
        gauges_down = (
            _value("genbus_dependency_up", service="ready-test", dependency="nats"),
            _value("genbus_dependency_up", service="ready-test", dependency="database"),
        )
        nats_up = True
        up = await client.get("/readyz")
    assert (down.status_code, down.json()["failing"]) == (503, {"nats": "ConnectionError"})
    assert gauges_down == (0.0, 1.0)
    assert up.status_code == 200
    assert _value("genbus_dependency_up", service="ready-test", dependency="nats") == 1.0
