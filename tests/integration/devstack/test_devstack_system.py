"""How `GenbusSystem` composes its processes' environment (nothing is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genbus.devstack.system import GenbusSystem, SystemConfig

pytestmark = pytest.mark.integration


def _system(base_dir: Path) -> GenbusSystem:
    return GenbusSystem(
        SystemConfig(
            base_dir=base_dir,
            nats_url="nats://127.0.0.1:1",
            database_url="postgresql://nobody@127.0.0.1:1/none",
            replicas={"api": 1, "dispatcher": 2, "poller": 1},
            extra_env={"GENBUS_LOG_LEVEL": "DEBUG", "GENBUS_CREDENTIALS_KEYS": "shared"},
            service_env={
                "poller": {"GENBUS_CREDENTIALS_KEYS": "other"},
                "dispatcher": {"GENBUS_DISPATCHER_LEASE_S": "2"},
                "dispatcher-2": {"GENBUS_DISPATCHER_REPLICA_ID": "second"},
            },
        )
    )


def test_service_env_is_laid_over_the_shared_env_per_service_then_per_replica(
    base_dir: Path,
) -> None:
    system = _system(base_dir)
    env = {name: process.env for name, process in system.processes.items()}

    assert env["poller"]["GENBUS_CREDENTIALS_KEYS"] == "other"
    assert env["poller"]["GENBUS_LOG_LEVEL"] == "DEBUG"
    assert env["api"]["GENBUS_CREDENTIALS_KEYS"] == "shared"
    assert env["dispatcher"]["GENBUS_CREDENTIALS_KEYS"] == "shared"
    assert env["dispatcher"]["GENBUS_DISPATCHER_LEASE_S"] == "2"
    assert "GENBUS_DISPATCHER_REPLICA_ID" not in env["dispatcher"]
    assert env["dispatcher-2"]["GENBUS_DISPATCHER_LEASE_S"] == "2"
    assert env["dispatcher-2"]["GENBUS_DISPATCHER_REPLICA_ID"] == "second"
    assert "GENBUS_DISPATCHER_LEASE_S" not in env["sim"]


def test_add_replica_makes_the_next_replica_with_its_own_port_and_env(base_dir: Path) -> None:
    system = _system(base_dir)
    third = system.add_replica("dispatcher")

    assert third.name == "dispatcher-3"
    assert system.processes["dispatcher-3"] is third
    assert not third.is_running()
    assert third.env["GENBUS_DISPATCHER_LEASE_S"] == "2"
    assert third.env["GENBUS_DISPATCHER_ADMIN_TOKEN"] == system.config.admin_token
    ports = {p.env["GENBUS_HEALTH_PORT"] for n, p in system.processes.items() if n != "sim"}
    assert len(ports) == len(system.processes) - 1
    assert system.add_replica("poller").name == "poller-2"
    with pytest.raises(ValueError, match="api"):
        system.add_replica("api")


def test_api_consumers_run_apart_from_an_http_only_api_when_asked(base_dir: Path) -> None:
    system = GenbusSystem(
        SystemConfig(
            base_dir=base_dir,
            nats_url="nats://127.0.0.1:1",
            database_url="postgresql://nobody@127.0.0.1:1/none",
            replicas={"api": 2, "dispatcher": 1, "poller": 1, "api-consumers": 1},
        )
    )
    consumers = system.processes["api-consumers"]
    assert consumers.argv[-2:] == ["genbus.api", "consumers"]
    assert "GENBUS_API_ROLE" not in consumers.env
    assert system.processes["api"].env["GENBUS_API_ROLE"] == "http"
    assert system.processes["api-2"].env["GENBUS_API_ROLE"] == "http"
    # Without it, one api process runs both (role `all`, the default).
    assert "GENBUS_API_ROLE" not in _system(base_dir).processes["api"].env
