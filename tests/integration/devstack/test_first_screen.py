"""`make run`'s first screen and connection facts: what a person needs, nothing that reads as a
failure, and a facts file the tools read."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from genbus.devstack.first_screen import (
    RunFacts,
    first_screen,
    service_lines,
    write_connection_facts,
)
from genbus.runtime.connection import env_with_facts

FAILURE = re.compile(r"traceback|\berror\b|exception|failed|\[error", re.IGNORECASE)


def _facts(tmp_path: Path) -> RunFacts:
    return RunFacts(
        nats_url="nats://127.0.0.1:41234",
        database_url="postgresql://postgres@127.0.0.1:5433/genbus",
        api_url="http://localhost:8000",
        admin_url="http://localhost:8001",
        sim_url="http://localhost:9100",
        webhooks_url="http://localhost:8002",
        admin_token="a" * 43,
        credentials_key="k" * 44,
        logs={name: tmp_path / f"{name}.log" for name in ("sim", "dispatcher", "poller", "api")},
    )


def test_the_first_screen_has_urls_curl_lines_a_line_per_service_and_no_failure(
    tmp_path: Path,
) -> None:
    facts = _facts(tmp_path)
    pids = {"sim": 10, "dispatcher": 11, "poller": 12, "api": 13}
    lines = service_lines(facts, pids) + first_screen(facts, "gbk_example", tmp_path / "c.json")
    screen = "\n".join(lines)
    assert [line.split()[0] for line in lines[:4]] == ["sim", "dispatcher", "poller", "api"]
    for needed in (
        "http://localhost:8000/docs",
        "http://localhost:8001/console/",
        "http://localhost:8002/api/v1/webhooks/endpoints",
        "curl -X POST http://localhost:8000/api/v1/jobs",
        "Authorization: Bearer gbk_example",
        "uv run genbus status",
        "nats://127.0.0.1:41234",
    ):
        assert needed in screen
    assert not FAILURE.search(screen), screen
    assert "a" * 43 not in screen  # the admin token stays in its file


def test_the_connection_facts_are_private_and_fill_the_tools_environment(
    tmp_path: Path,
) -> None:
    path = write_connection_facts(tmp_path, _facts(tmp_path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["console_url"] == "http://localhost:8001/console/"
    env = env_with_facts({"GENBUS_LOCAL_DIR": str(tmp_path)})
    assert env["NATS_URL"] == "nats://127.0.0.1:41234"
    assert env["GENBUS_ADMIN_URL"] == "http://localhost:8001"
    assert env["GENBUS_ADMIN_TOKEN"] == "a" * 43
    assert env["DATABASE_URL"].endswith("/genbus")
