"""`genbus status` and `genbus audit` against a fake admin API and a fake JetStream read:
the tables, `--watch` redrawing until Ctrl-C, and an unreachable server shown, not fatal."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from genbus.cli.__main__ import run
from genbus.cli.client import AdminError
from genbus.cli.commands import status

TOKEN = "t" * 40
STATUS = {
    "queues": [{"provider_id": "sim", "queued": 3, "due": 2, "oldest_waiting_s": 1.5}],
    "in_flight": [
        {
            "account_id": "sim-1",
            "provider_id": "sim",
            "status": "active",
            "breaker": "open",
            "breaker_open_until": "2026-01-01T00:00:10+00:00",
            "busy": 2,
            "max_concurrent": 4,
        }
    ],
    "accounts": {},
}
STREAMS = {"consumers": [{"consumer": "dispatcher-requested", "pending": 7}], "dead_letters": 4}


def _genbus(monkeypatch: pytest.MonkeyPatch, *argv: str, streams: Any = None) -> tuple[int, str]:
    def fake_streams(env: Any, work: Any) -> Any:
        if isinstance(streams, Exception):
            raise streams
        return streams or STREAMS

    monkeypatch.setattr(status, "with_jetstream", fake_streams)
    out = io.StringIO()

    def admin(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/admin/audit":
            entry = {
                "id": 3,
                "at": "2026-01-01T00:00:00+00:00",
                "actor": "ops@10.0.0.1",
                "action": "account.update",
                "target": "sim-1",
                "before": {"max_concurrent": 4, "busy": 1},
                "after": {"max_concurrent": 6, "busy": 3},
            }
            return httpx.Response(200, json={"entries": [entry]})
        return httpx.Response(200, json=STATUS)

    code = run(
        list(argv),
        env={"GENBUS_ADMIN_TOKEN": TOKEN, "GENBUS_ADMIN_URL": "http://admin.test"},
        out=out,
        err=io.StringIO(),
        transport=httpx.MockTransport(admin),
    )
    return code, out.getvalue()


def test_status_shows_queues_in_flight_consumers_and_dead_letters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out = _genbus(monkeypatch, "status")
    assert code == 0
    for expected in ("QUEUES", "sim", "1.5", "open until 2026-01-01T00:00:10", "2/4", "7"):
        assert expected in out
    assert "DEAD LETTERS  4" in out


def test_status_watch_redraws_until_ctrl_c_and_survives_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks: list[float] = []

    def sleep(seconds: float) -> None:
        ticks.append(seconds)
        if len(ticks) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(status.time, "sleep", sleep)
    outage = AdminError("nats_unreachable", "cannot reach NATS at nats://x:1: refused")
    code, out = _genbus(monkeypatch, "status", "--watch", "0.5", streams=outage)
    assert code == 0
    assert ticks == [0.5, 0.5]
    assert out.count("genbus status, every 0.5s") == 2
    assert "cannot reach NATS" in out


def test_audit_shows_who_changed_what(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _genbus(monkeypatch, "audit")
    assert code == 0
    assert "ops@10.0.0.1" in out
    assert "max_concurrent: 4 -> 6" in out
    assert "busy" not in out
