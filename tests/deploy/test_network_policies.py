"""Under base's default deny, every genbus workload gets exactly the flows it needs.

The policies are evaluated as Kubernetes does (a flow is allowed when any policy selecting the
pod allows it), for pod selectors with matchLabels and `In` expressions and for IP blocks.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from .kustomize import Resource, render
from .layout import K8S

BASE = K8S / "base"
NATS_LABELS = {"app.kubernetes.io/name": "nats"}
#: Every genbus workload of base that connects to NATS.
NATS_CLIENTS = (
    "genbus-api",
    "genbus-api-consumers",
    "genbus-dispatcher",
    "genbus-poller",
    "genbus-webhooks",
    "genbus-provision",
)
#: Where a webhook must never be delivered from inside the cluster (pods, Services, nodes,
#: the cloud metadata address).
PRIVATE = ("10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "127.0.0.1", "fd00::1")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if set(selector) - {"matchLabels", "matchExpressions"}:
        raise AssertionError(f"selector not implemented here: {selector}")
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _peer_matches(peer: dict[str, Any], target: dict[str, str] | str) -> bool:
    if "ipBlock" in peer:
        if not isinstance(target, str):
            return False
        address = ipaddress.ip_address(target)
        block = peer["ipBlock"]
        cidr = ipaddress.ip_network(block["cidr"])
        if address.version != cidr.version or address not in cidr:
            return False
        return not any(
            address.version == ipaddress.ip_network(e).version
            and address in ipaddress.ip_network(e)
            for e in block.get("except", [])
        )
    if not isinstance(target, dict):
        return False
    # Same-namespace pods: a namespaceSelector alone would mean other namespaces' pods too.
    return "namespaceSelector" not in peer and _selects(peer["podSelector"], target)


def _labels(resources: list[Resource], workload: str) -> dict[str, str]:
    (found,) = [
        r
        for r in resources
        if r["kind"] in ("Deployment", "Job") and r["metadata"]["name"] == workload
    ]
    labels: dict[str, str] = found["spec"]["template"]["metadata"]["labels"]
    return labels


def _allowed(
    resources: list[Resource],
    direction: str,
    pod: dict[str, str],
    port: int,
    peer: dict[str, str] | str | None = None,
) -> bool:
    """A flow of `pod` (egress: to `peer`; ingress: from anyone) on TCP `port`."""
    field = direction.lower()
    for policy in (r["spec"] for r in resources if r["kind"] == "NetworkPolicy"):
        if direction not in policy["policyTypes"] or not _selects(policy["podSelector"], pod):
            continue
        for rule in policy.get(field, []):
            ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}
            if rule.get("ports") and ("TCP", port) not in ports:
                continue
            peers = rule.get("to" if field == "egress" else "from")
            if not peers or (peer is not None and any(_peer_matches(p, peer) for p in peers)):
                return True
    return False


@pytest.mark.parametrize("workload", NATS_CLIENTS)
def test_nats_clients_reach_nats_only_there(workload: str) -> None:
    resources = render(BASE)
    pod = _labels(resources, workload)
    assert _allowed(resources, "Egress", pod, 4222, NATS_LABELS)
    assert not _allowed(resources, "Egress", pod, 4222, {"app.kubernetes.io/name": "other"})


def _database_users(resources: list[Resource]) -> set[str]:
    return {
        r["metadata"]["name"]
        for r in resources
        if r["kind"] == "Deployment"
        for c in r["spec"]["template"]["spec"]["containers"]
        if any(e["name"] == "DATABASE_URL" for e in c.get("env", []))
    }


def test_every_workload_with_a_database_reaches_postgres() -> None:
    resources = render(BASE)
    users = _database_users(resources)
    assert {"genbus-api", "genbus-api-consumers", "genbus-dispatcher", "genbus-webhooks"} <= users
    for workload in users:
        assert _allowed(resources, "Egress", _labels(resources, workload), 5432, "203.0.113.5")
    assert not _allowed(resources, "Egress", _labels(resources, "genbus-poller"), 5432, "1.1.1.1")


@pytest.mark.parametrize("port", [443, 80])
def test_webhooks_deliver_to_public_addresses_only(port: int) -> None:
    resources = render(BASE)
    webhooks = _labels(resources, "genbus-webhooks")
    assert _allowed(resources, "Egress", webhooks, port, "203.0.113.5")
    assert _allowed(resources, "Egress", webhooks, port, "2001:db8::5")
    for address in PRIVATE:
        assert not _allowed(resources, "Egress", webhooks, port, address), address
    assert not _allowed(resources, "Egress", webhooks, 8443, "203.0.113.5")
    # Nobody else delivers webhooks: the api reaches out only to the object store (HTTPS).
    api = _labels(resources, "genbus-api")
    assert _allowed(resources, "Egress", api, port, "1.1.1.1") is (port == 443)


@pytest.mark.parametrize("address", ["52.216.1.1", "10.1.2.3"])
def test_the_api_and_its_consumers_reach_the_object_store_over_https(address: str) -> None:
    """Any address: a cloud S3 API, or its VPC endpoint (private). Nobody else needs it."""
    resources = render(BASE)
    for workload in ("genbus-api", "genbus-api-consumers"):
        assert _allowed(resources, "Egress", _labels(resources, workload), 443, address)
        assert not _allowed(resources, "Egress", _labels(resources, workload), 8443, address)
    webhooks = _labels(resources, "genbus-webhooks")
    assert not _allowed(resources, "Egress", webhooks, 443, "10.1.2.3")


def test_the_local_overlay_runs_its_s3_server_for_the_api_only() -> None:
    resources = render(K8S / "overlays" / "local")
    s3 = {"app.kubernetes.io/name": "s3"}
    for workload in ("genbus-api", "genbus-api-consumers", "s3-bucket"):
        labels = _labels(resources, workload)
        assert _allowed(resources, "Egress", labels, 8333, s3), workload
    assert not _allowed(resources, "Egress", _labels(resources, "genbus-dispatcher"), 8333, s3)
    ingress_from = next(
        r["spec"]["ingress"][0]["from"][0]["podSelector"]
        for r in resources
        if r["kind"] == "NetworkPolicy" and r["metadata"]["name"] == "s3"
    )
    assert _selects(ingress_from, _labels(resources, "genbus-api-consumers"))
    assert not _selects(ingress_from, _labels(resources, "genbus-dispatcher"))
    # The archiver copies the in-cluster sim's outputs.
    sim = {"app.kubernetes.io/name": "provider-sim"}
    consumers = _labels(resources, "genbus-api-consumers")
    assert _allowed(resources, "Egress", consumers, 9100, sim)


def _container_port(resources: list[Resource], workload: str, name: str) -> int:
    (deployment,) = [
        r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == workload
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return int(port)


def test_webhooks_ask_the_api_about_keys_and_serve_their_api() -> None:
    resources = render(BASE)
    webhooks = _labels(resources, "genbus-webhooks")
    api = _labels(resources, "genbus-api")
    api_port = _container_port(resources, "genbus-api", "http")
    assert _allowed(resources, "Egress", webhooks, api_port, api)
    assert _allowed(resources, "Ingress", api, api_port)
    assert _allowed(
        resources, "Ingress", webhooks, _container_port(resources, "genbus-webhooks", "http")
    )


@pytest.mark.parametrize(
    "workload", ["genbus-api-consumers", "genbus-dispatcher", "genbus-poller", "genbus-webhooks"]
)
def test_prometheus_reaches_the_metrics_port(workload: str) -> None:
    resources = render(BASE)
    (deployment,) = [
        r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == workload
    ]
    port = int(deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
    assert _allowed(resources, "Ingress", _labels(resources, workload), port)


def test_workers_take_no_other_ingress() -> None:
    resources = render(BASE)
    for workload in ("genbus-api-consumers", "genbus-dispatcher", "genbus-poller"):
        assert not _allowed(resources, "Ingress", _labels(resources, workload), 8000), workload
