"""Poison messages on every subject land in the dead-letter stream with their reason while the
services keep processing good ones; `genbus deadletters` lists and replays them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from genbus.contracts import (
    CANCEL_REQUESTED,
    COMPLETED,
    CONSUMERS,
    REQUESTED,
    SUBMITTED,
    WAITING,
)
from genbus.contracts.permissions import PROVISIONER
from genbus.devstack.system import OPTIONAL_SERVICES, GenbusSystem
from genbus.runtime.nats_client import connect_nats
from tests.e2e.conftest import wait_for, wait_terminal

pytestmark = pytest.mark.e2e


def genbus(system: GenbusSystem, *args: str) -> Any:
    env = {
        **os.environ,
        "NATS_URL": system.config.nats_url,
        **system.nats_env(PROVISIONER),
        "GENBUS_ADMIN_URL": system.admin_url,
        "GENBUS_ADMIN_TOKEN": system.config.admin_token,
    }
    result = subprocess.run(
        [sys.executable, "-m", "genbus.cli", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


async def _publish_poison(nats_url: str) -> None:
    nc = await connect_nats(nats_url)
    try:
        js = nc.jetstream()
        for index, binding in enumerate(
            (REQUESTED, SUBMITTED, COMPLETED, CANCEL_REQUESTED, WAITING)
        ):
            await js.publish(
                binding.subject("sim"),
                b'{"event_id": "not-a-uuid"}',
                headers={"Nats-Msg-Id": f"poison-{index}"},
            )
    finally:
        await nc.close()


def test_poison_is_dead_lettered_and_replayable(
    system: GenbusSystem, api: httpx.Client, sim: httpx.Client
) -> None:
    asyncio.run(_publish_poison(system.nats_url_for(PROVISIONER)))
    # Of the services this system runs (the webhooks service is started only by its own tests).
    every_consumer = {spec.durable for spec in CONSUMERS if spec.service not in OPTIONAL_SERVICES}

    letters = wait_for(
        lambda: genbus(system, "deadletters", "list"),
        lambda rows: {row["consumer"] for row in rows} >= every_consumer,
    )
    assert len(letters) == len(every_consumer)
    assert all("invalid" in row["reason"] and "event_id" in row["reason"] for row in letters)

    # Good work still flows.
    response = api.post(
        "/api/v1/generations",
        json={"operation_type": "text_to_video", "provider_id": "sim", "params": {"prompt": "ok"}},
    )
    assert wait_terminal(api, f"/api/v1/generations/{response.json()['id']}")["status"] == (
        "completed"
    )

    status = genbus(system, "status")
    assert status["dead_letters"] == len(every_consumer)
    # Every consumer of the contracts is provisioned, those of services not running included.
    assert every_consumer <= {c["consumer"] for c in status["consumers"] if not c.get("missing")}

    replayed = genbus(system, "deadletters", "replay", "--all")
    assert len(replayed) == len(every_consumer)
    # Still poison: each replayed message is dead-lettered again by every consumer of its
    # subject, and the replayed copies are gone from the stream.
    again = wait_for(
        lambda: genbus(system, "deadletters", "list"),
        lambda rows: (
            len(rows) >= len(every_consumer)
            and not {r["sequence"] for r in rows} & {r["sequence"] for r in replayed}
        ),
    )
    assert {row["consumer"] for row in again} == every_consumer
