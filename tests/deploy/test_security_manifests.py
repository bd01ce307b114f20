"""What makes the Kubernetes deployment start and stay closed: probes reach what each service
binds, NATS runs the contracts' users over TLS, every service has its own NATS identity."""

from __future__ import annotations

import json
import os
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from genbus.api.config import ApiSettings
from genbus.api.service_layer.metrics import API_METRICS
from genbus.contracts.nats_config import password_env, render_authorization
from genbus.contracts.permissions import (
    OPERATOR,
    PROVISIONER,
    SUBSCRIBER,
    all_permissions,
)
from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.service_layer.metrics import DISPATCH_METRICS
from genbus.poller.config import PollerSettings
from genbus.poller.service_layer.metrics import POLLER_METRICS
from genbus.runtime.metrics import METRICS
from genbus.runtime.settings import RuntimeSettings
from genbus.webhooks.config import WebhooksSettings
from genbus.webhooks.service_layer.metrics import WEBHOOK_METRICS

from .kustomize import render
from .layout import K8S, KUSTOMIZATIONS

BASE = K8S / "base"
NATS = K8S / "nats"
OVERLAYS = sorted(folder for folder in KUSTOMIZATIONS if "overlays" in folder.parts)
SETTINGS: dict[str, type[RuntimeSettings]] = {
    "genbus-api": ApiSettings,
    "genbus-api-consumers": ApiSettings,
    "genbus-dispatcher": DispatcherSettings,
    "genbus-poller": PollerSettings,
    "genbus-webhooks": WebhooksSettings,
}
#: The one Deployment whose probes hit the HTTP API's address; the others' hit the health
#: listener (GENBUS_HEALTH_HOST/PORT), the api's consumers process included.
HTTP_API = "genbus-api"
#: The NATS user each genbus workload connects as (api-consumers is the api's event consumers).
NATS_USERS = {
    "Deployment/genbus-api": "api",
    "Deployment/genbus-api-consumers": "api",
    "Deployment/genbus-dispatcher": "dispatcher",
    "Deployment/genbus-poller": "poller",
    "Deployment/genbus-webhooks": "webhooks",
    "Job/genbus-provision": PROVISIONER,
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
    if deployment == HTTP_API:
        assert isinstance(settings, ApiSettings)
        host, port = settings.host, settings.port
    else:
        host, port = settings.health_host, settings.health_port
    assert host not in LOOPBACK, f"{deployment} binds {host}: kubelet probes cannot reach it"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        target = container[probe]["httpGet"]["port"]
        assert ports.get(target, target) == port, (deployment, probe, port)


def _secret_ref(container: dict[str, Any], name: str) -> dict[str, str]:
    (env,) = [e for e in container.get("env", []) if e["name"] == name]
    ref: dict[str, str] = env["valueFrom"]["secretKeyRef"]
    return ref


def _ca_is_mounted(pod: dict[str, Any], container: dict[str, Any], ca: str) -> bool:
    """`ca` is a file of a volume mounted from the `nats-tls` Secret."""
    secrets = {
        v["name"]: v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v
    }
    return any(
        os.path.dirname(ca) == m["mountPath"] and secrets.get(m["name"]) == "nats-tls"
        for m in container.get("volumeMounts", [])
    )


@pytest.mark.parametrize("workload", sorted(NATS_USERS))
def test_each_workload_connects_as_its_nats_user_over_tls(workload: str) -> None:
    resources = render(BASE)
    kind, _, name = workload.partition("/")
    pod = _find(resources, kind, name)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _env_of(resources, container)
    user = NATS_USERS[workload]
    assert env["GENBUS_NATS_USER"] == user
    assert env["NATS_URL"].startswith("tls://")
    password = _secret_ref(container, "GENBUS_NATS_PASSWORD")
    assert password == {"name": "genbus-nats-users", "key": user}
    assert _ca_is_mounted(pod, container, env["GENBUS_NATS_TLS_CA"]), workload
    assert int(env["GENBUS_STREAM_REPLICAS"]) == 3


def test_every_genbus_workload_is_given_its_nats_identity() -> None:
    """No workload of base is left out of NATS_USERS, and every user is one of the contracts'."""
    workloads = {
        f"{r['kind']}/{r['metadata']['name']}"
        for r in render(BASE)
        if r["kind"] in ("Deployment", "StatefulSet", "Job")
    }
    assert workloads == set(NATS_USERS)
    users = {p.user for p in all_permissions()}
    assert set(NATS_USERS.values()) <= users
    # Run by no workload of base: the subscriber (other services) and the operator (the
    # dispatcher's admin listener, its second connection: see the next test).
    assert users - set(NATS_USERS.values()) == {SUBSCRIBER, OPERATOR}


def test_the_dispatchers_admin_listener_connects_as_the_operator() -> None:
    resources = render(BASE)
    (container,) = _find(resources, "Deployment", "genbus-dispatcher")["spec"]["template"]["spec"][
        "containers"
    ]
    env = _env_of(resources, container)
    assert env["GENBUS_DISPATCHER_OPERATOR_NATS_USER"] == OPERATOR
    password = _secret_ref(container, "GENBUS_DISPATCHER_OPERATOR_NATS_PASSWORD")
    assert password == {"name": "genbus-nats-users", "key": OPERATOR}
    settings = _settings(DispatcherSettings, env)
    assert isinstance(settings, DispatcherSettings)
    assert settings.operator_nats_user == OPERATOR


def test_every_genbus_container_runs_an_installed_command() -> None:
    scripts = {ep.name for ep in entry_points(group="console_scripts")}
    resources = render(BASE)
    for resource in resources:
        if resource["kind"] not in ("Deployment", "Job"):
            continue
        pod = resource["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            if container["image"].startswith("genbus/"):
                assert container["command"][0] in scripts | {"python"}, container["command"]
    consumers = _find(resources, "Deployment", "genbus-api-consumers")
    (container,) = consumers["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["genbus-api", "consumers"]
    assert container["image"].startswith("genbus/api:")


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


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_an_overlay_that_makes_the_nats_users_secret_gives_every_user(overlay: Path) -> None:
    secrets = [
        r
        for r in render(overlay)
        if r["kind"] == "Secret" and r["metadata"]["name"] == "genbus-nats-users"
    ]
    assert secrets or overlay.name != "local", "the local overlay makes it"
    for secret in secrets:
        assert set(secret["data"]) == {p.user for p in all_permissions()}


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
    # Imported: every genbus metric is registered, whichever tests ran before.
    assert None not in (METRICS, API_METRICS, DISPATCH_METRICS, POLLER_METRICS, WEBHOOK_METRICS)
    exported = {m.name for m in REGISTRY.collect()}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"\b(genbus_[a-z_]+?)(?:_bucket)?\b", target["expr"]))
            assert names <= exported | {n + "_total" for n in exported}, panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
