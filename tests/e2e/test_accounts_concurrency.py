"""Three accounts with different caps and a backlog: the provider sees each key reach its
account's `max_concurrent` and never exceed it (the sim counts, accepting any overflow)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from genbus.devstack.postgres import PostgresServer
from genbus.devstack.system import AccountSeed, GenbusSystem
from tests.e2e.conftest import TERMINAL, running_system, wait_for

pytestmark = pytest.mark.e2e

ACCOUNTS = (
    AccountSeed("cap-1", "sim-key-1", max_concurrent=1),
    AccountSeed("cap-2", "sim-key-2", max_concurrent=2),
    AccountSeed("cap-4", "sim-key-3", max_concurrent=4),
)
BACKLOG = 40
JOB_S = 0.5


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[GenbusSystem]:
    cap = max(a.max_concurrent for a in ACCOUNTS)
    sim_env = {
        "SIM_DURATION_S": str(JOB_S),
        "SIM_DURATION_JITTER_S": "0",
        # Accept overflow and count it: the sim is the oracle, not a guard.
        "SIM_ENFORCE_CONCURRENCY": "false",
        "SIM_PER_KEY_CONCURRENCY": str(cap),
    }
    base = tmp_path_factory.mktemp("accounts-concurrency")
    with running_system(base, postgres, sim_env, ACCOUNTS) as genbus:
        yield genbus


def test_each_key_reaches_but_never_exceeds_its_accounts_cap(
    api: httpx.Client, sim: httpx.Client, admin: httpx.Client
) -> None:
    # A real backlog: every job is queued before any account may take one.
    for account in ACCOUNTS:
        disabled = admin.post(f"/admin/accounts/{account.label}/disable", json={"reason": "wait"})
        disabled.raise_for_status()
    ids = []
    for index in range(BACKLOG):
        response = api.post(
            "/api/v1/generations",
            json={
                "operation_type": "text_to_video",
                "provider_id": "sim",
                "params": {"prompt": f"backlog {index}"},
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    wait_for(
        lambda: admin.get("/admin/status").json()["queues"],
        lambda queues: sum(q["queued"] for q in queues) == BACKLOG,
    )
    started = time.monotonic()
    for account in ACCOUNTS:
        admin.post(f"/admin/accounts/{account.label}/enable").raise_for_status()

    statuses = wait_for(
        lambda: [api.get(f"/api/v1/generations/{gid}").json()["status"] for gid in ids],
        lambda s: all(status in TERMINAL for status in s),
        timeout=120,
    )
    elapsed = time.monotonic() - started

    assert statuses == ["completed"] * BACKLOG
    stats = sim.get("/_sim/stats").json()
    seen = {a.label: stats["keys"][a.api_key]["max_concurrent_seen"] for a in ACCOUNTS}
    caps = {a.label: a.max_concurrent for a in ACCOUNTS}
    print(f"\n{BACKLOG} jobs of {JOB_S}s in {elapsed:.1f}s; max_concurrent_seen {seen} caps {caps}")
    assert seen == caps  # reached, and (equality) never exceeded
    for account in ACCOUNTS:
        key = stats["keys"][account.api_key]
        assert key["concurrency_violations"] == 0
        assert key["submissions"] >= account.max_concurrent
    assert stats["concurrency_violations"] == 0
    assert stats["submissions"] == BACKLOG
    assert stats["duplicate_references"] == 0
