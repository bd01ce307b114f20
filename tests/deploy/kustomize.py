"""A small kustomize, so the tests render deploy/k8s without a kustomize binary.

It implements the part of kustomize that deploy/k8s uses: `resources` (files and folders with a
kustomization), `namespace`, `images`, `secretGenerator` / `configMapGenerator` (literals, env
files, files) with `disableNameSuffixHash`, and JSON 6902 `patches` with a `target`. Any other
field is refused, so a kustomization cannot use a feature this renderer would silently skip.
Where kubectl is installed, tests/deploy compares its output with `kubectl kustomize`.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

_SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "secretGenerator",
    "configMapGenerator",
    "patches",
}

# Kinds without a namespace; anything else (custom resources included) is namespaced, as in
# kustomize. A Namespace object is renamed to the kustomization's namespace instead.
_CLUSTER_SCOPED = {
    "APIService",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTriggerAuthentication",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
}


class KustomizeError(Exception):
    """The kustomization is broken, or uses something this renderer does not implement."""


def find_kustomization(folder: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def load_yaml_documents(path: Path) -> list[Resource]:
    """Every non-empty document of a YAML file."""
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def load_kustomization(folder: Path) -> dict[str, Any]:
    path = find_kustomization(folder)
    if path is None:
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    documents = load_yaml_documents(path)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise KustomizeError(f"{path}: expected one mapping")
    kustomization: dict[str, Any] = documents[0]
    unsupported = set(kustomization) - _SUPPORTED_FIELDS
    if unsupported:
        raise KustomizeError(f"{path}: fields this renderer does not implement: {unsupported}")
    return kustomization


def referenced_paths(folder: Path) -> Iterator[tuple[str, Path]]:
    """(field, path) for every file or folder the kustomization in `folder` refers to."""
    kustomization = load_kustomization(folder)
    for entry in kustomization.get("resources", []):
        yield "resources", folder / entry
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            yield "patches", folder / patch["path"]
    for field in ("secretGenerator", "configMapGenerator"):
        for generator in kustomization.get(field, []):
            for env_file in generator.get("envs", []):
                yield field, folder / env_file
            for file_spec in generator.get("files", []):
                yield field, folder / file_spec.partition("=")[2 if "=" in file_spec else 0]


def render(folder: Path) -> list[Resource]:
    """The resources `kubectl kustomize <folder>` would print (order aside)."""
    folder = folder.resolve()
    kustomization = load_kustomization(folder)
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            resources.extend(render(path))
        elif path.is_file():
            resources.extend(load_yaml_documents(path))
        else:
            raise KustomizeError(f"{folder}: resource {entry!r} does not exist")
    resources.extend(_generate(folder, kustomization))
    for patch in kustomization.get("patches", []):
        _apply_patch(folder, patch, resources)
    if "namespace" in kustomization:
        _set_namespace(resources, kustomization["namespace"])
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    _check_unique(folder, resources)
    return resources


def _generate(folder: Path, kustomization: dict[str, Any]) -> Iterator[Resource]:
    for field, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for generator in kustomization.get(field, []):
            unsupported = set(generator) - {"name", "literals", "envs", "files", "options", "type"}
            if unsupported:
                raise KustomizeError(f"{folder}: {field} fields not implemented: {unsupported}")
            options = generator.get("options", {})
            if set(options) - {"disableNameSuffixHash", "labels"} or not options.get(
                "disableNameSuffixHash"
            ):
                raise KustomizeError(
                    f"{folder}: {field} {generator['name']}: only disableNameSuffixHash: true "
                    "(and labels) is implemented (name hashes and the references they rewrite "
                    "are not)"
                )
            data: dict[str, str] = {}
            for literal in generator.get("literals", []):
                key, sep, value = literal.partition("=")
                if not sep:
                    raise KustomizeError(f"{folder}: literal {literal!r} has no '='")
                data[key] = value
            for env_file in generator.get("envs", []):
                data.update(_read_env_file(folder / env_file))
            for file_spec in generator.get("files", []):
                key, sep, name = file_spec.partition("=")
                path = folder / (name if sep else key)
                if not path.is_file():
                    raise KustomizeError(f"{folder}: generator file {file_spec!r} does not exist")
                data[key if sep else path.name] = path.read_text()
            resource: Resource = {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": generator["name"]},
            }
            if options.get("labels"):
                resource["metadata"]["labels"] = dict(options["labels"])
            if kind == "Secret":
                resource["type"] = generator.get("type", "Opaque")
                resource["data"] = {
                    key: base64.b64encode(value.encode()).decode() for key, value in data.items()
                }
            else:
                resource["data"] = data
            yield resource


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise KustomizeError(f"env file {path} does not exist")
    pairs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


@dataclass(frozen=True)
class _Target:
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    group: str | None = None
    version: str | None = None

    def selects(self, resource: Resource) -> bool:
        group, _, version = resource["apiVersion"].rpartition("/")
        metadata = resource.get("metadata", {})
        return (
            (self.kind is None or self.kind == resource["kind"])
            and (self.name is None or self.name == metadata.get("name"))
            and (self.namespace is None or self.namespace == metadata.get("namespace"))
            and (self.group is None or self.group == group)
            and (self.version is None or self.version == version)
        )


def _apply_patch(folder: Path, patch: dict[str, Any], resources: list[Resource]) -> None:
    if set(patch) - {"target", "patch", "path"} or ("patch" in patch) == ("path" in patch):
        raise KustomizeError(f"{folder}: a patch needs a target and one of patch/path: {patch}")
    target_spec = patch.get("target")
    if not isinstance(target_spec, dict) or set(target_spec) - set(_Target.__dataclass_fields__):
        raise KustomizeError(f"{folder}: patch target not implemented: {target_spec}")
    if "path" in patch:
        path = folder / patch["path"]
        if not path.is_file():
            raise KustomizeError(f"{folder}: patch file {patch['path']!r} does not exist")
        text = path.read_text()
    else:
        text = patch["patch"]
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise KustomizeError(
            f"{folder}: only JSON 6902 patches (a list of operations) are implemented"
        )
    target = _Target(**target_spec)
    matched = [resource for resource in resources if target.selects(resource)]
    if not matched:
        raise KustomizeError(f"{folder}: patch target {target_spec} matches no resource")
    for resource in matched:
        for operation in operations:
            _apply_operation(resource, operation)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with '/': {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _apply_operation(document: Resource, operation: dict[str, Any]) -> None:
    op = operation.get("op")
    *parents, last = _pointer(operation["path"])
    container: Any = document
    for part in parents:
        container = container[int(part)] if isinstance(container, list) else container[part]
    if op == "test":
        current = container[int(last)] if isinstance(container, list) else container[last]
        if current != operation["value"]:
            raise KustomizeError(f"patch test failed at {operation['path']}")
    elif op == "remove":
        del container[int(last) if isinstance(container, list) else last]
    elif op in ("add", "replace"):
        value = copy.deepcopy(operation["value"])
        if isinstance(container, list):
            if last == "-":
                container.append(value)
            elif op == "add":
                container.insert(int(last), value)
            else:
                container[int(last)] = value
        else:
            if op == "replace" and last not in container:
                raise KustomizeError(f"patch replace of a missing path {operation['path']}")
            container[last] = value
    else:
        raise KustomizeError(f"JSON 6902 op not implemented: {op!r}")


def _set_namespace(resources: list[Resource], namespace: str) -> None:
    for resource in resources:
        metadata = resource.setdefault("metadata", {})
        if resource["kind"] == "Namespace":
            metadata["name"] = namespace
        elif resource["kind"] not in _CLUSTER_SCOPED:
            metadata["namespace"] = namespace


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference; a registry port is not a tag."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def _set_image(resources: list[Resource], spec: dict[str, Any]) -> None:
    if set(spec) - {"name", "newName", "newTag", "digest"}:
        raise KustomizeError(f"images entry not implemented: {spec}")
    for container in _containers(resources):
        name, tag, digest = split_image(container["image"])
        if name != spec["name"]:
            continue
        name = spec.get("newName", name)
        if "digest" in spec:
            container["image"] = f"{name}@{spec['digest']}"
        elif "newTag" in spec:
            container["image"] = f"{name}:{spec['newTag']}"
        else:
            container["image"] = (
                name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            )


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(
                value, list
            ):
                yield from (c for c in value if isinstance(c, dict) and "image" in c)
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def resource_id(resource: Resource) -> tuple[str, str, str, str]:
    metadata = resource.get("metadata", {})
    return (
        resource.get("apiVersion", ""),
        resource.get("kind", ""),
        metadata.get("namespace", ""),
        metadata.get("name", ""),
    )


def _check_unique(folder: Path, resources: list[Resource]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for resource in resources:
        key = resource_id(resource)
        if key in seen:
            raise KustomizeError(f"{folder}: duplicate resource {json.dumps(key)}")
        seen.add(key)
