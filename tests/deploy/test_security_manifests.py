"""What makes the Kubernetes deployment start and stay closed: probes reach what each service
binds, NATS runs the contracts' users over TLS, every service has its own NATS identity."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY

from genbus.api.config import ApiSettings
from genbus.contracts.nats_config import password_env, render_authorization
from genbus.contracts.permissions import all_permissions
from genbus.dispatcher.config import DispatcherSettings
from genbus.poller.config import PollerSettings
from genbus.runtime.metrics import METRICS
from genbus.runtime.settings import RuntimeSettings

from .kustomize import render
from .layout import K8S

BASE = K8S / "base"
NATS = K8S / "nats"
SETTINGS: dict[str, type[RuntimeSettings]] = {
    "genbus-api": ApiSettings,
    "genbus-dispatcher": DispatcherSettings,
    "genbus-poller": PollerSettings,
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def _env_of(resources: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The literal environment a container gets (config maps and plain values)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config = _find(resources, "ConfigMap", source["configMapRef"]["name"])
        env.update(config.get("data", {}))
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def _settings(cls: type[RuntimeSettings], env: dict[str, str]) -> RuntimeSettings:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("GENBUS_", "NATS_", "DATABASE_")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("GENBUS_CREDENTIALS_KEYS", "x")  # a secret's presence, not its value
        return cls()


@pytest.mark.parametrize("deployment", sorted(SETTINGS))
def test_every_probe_reaches_the_address_the_service_binds(deployment: str) -> None:
    resources = render(BASE)
    pod = _find(resources, "Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    settings = _settings(SETTINGS[deployment], _env_of(resources, container))
    if isinstance(settings, ApiSettings):
        host, port = settings.host, settings.port
    else:
        host, port = settings.health_host, settings.health_port
    assert host not in LOOPBACK, f"{deployment} binds {host}: kubelet probes cannot reach it"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        target = container[probe]["httpGet"]["port"]
        assert ports.get(target, target) == port, (deployment, probe, port)


@pytest.mark.parametrize("deployment", sorted(SETTINGS))
def test_each_service_connects_as_its_own_nats_user_over_tls(deployment: str) -> None:
    resources = render(BASE)
    pod = _find(resources, "Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _env_of(resources, container)
    service = deployment.removeprefix("genbus-")
    assert env["GENBUS_NATS_USER"] == service
    assert env["NATS_URL"].startswith("tls://")
    (password,) = [e for e in container["env"] if e["name"] == "GENBUS_NATS_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {"name": "genbus-nats-users", "key": service}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert os.path.dirname(env["GENBUS_NATS_TLS_CA"]) in mounts
    assert int(env["GENBUS_STREAM_REPLICAS"]) == 3


def test_the_nats_servers_run_the_contracts_users_over_tls() -> None:
    resources = render(NATS)
    conf = _find(resources, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert render_authorization() in conf, "regenerate the authorization block"
    assert "no_auth_user" not in conf
    assert "tls {" in conf
    assert "verify: true" in conf  # routes: mutual TLS
    pod = _find(resources, "StatefulSet", "nats")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    for identity in all_permissions():
        assert refs[password_env(identity.user)] == {
            "name": "genbus-nats-users",
            "key": identity.user,
        }


def test_a_default_deny_policy_covers_the_namespace() -> None:
    resources = render(BASE)
    deny = _find(resources, "NetworkPolicy", "genbus-default-deny")["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    to_nats = _find(resources, "NetworkPolicy", "genbus-to-nats")["spec"]
    (rule,) = to_nats["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 4222}]


MONITORING = K8S / "monitoring"


def test_alerts_cover_lag_dead_letters_breakers_and_stuck_slots() -> None:
    (rule,) = [r for r in render(MONITORING) if r["kind"] == "PrometheusRule"]
    rules = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(rules) == {
        "GenbusConsumerLagHigh",
        "GenbusDeadLetters",
        "GenbusAccountBreakerOpen",
        "GenbusSlotsStuck",
    }
    assert "genbus_dead_letters_total" in rules["GenbusDeadLetters"]
    assert "genbus_account_breaker_open" in rules["GenbusAccountBreakerOpen"]
    assert "genbus_account_slots" in rules["GenbusSlotsStuck"]


def test_the_dashboard_is_valid_json_on_metrics_genbus_exports() -> None:
    (config,) = [r for r in render(MONITORING) if r["kind"] == "ConfigMap"]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config["data"]["grafana-dashboard.json"])
    assert METRICS is not None  # imported: every genbus metric is registered
    exported = {m.name for m in REGISTRY.collect()}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"\b(genbus_[a-z_]+?)(?:_bucket)?\b", target["expr"]))
            assert names <= exported | {n + "_total" for n in exported}, panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
