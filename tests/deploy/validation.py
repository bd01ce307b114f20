"""Offline schema validation of deployment files: Kubernetes objects and the Compose file.

- Built-in Kubernetes kinds: the strict JSON schemas bundled in `kubernetes-validate` (one set
  per Kubernetes minor version; unknown fields are errors, as with `kubectl --validate=strict`).
- KEDA ScaledObject: the CRD's schema committed under tests/deploy/schemas (see its README);
  its `metadata` is checked against Kubernetes' ObjectMeta.
- Compose: the Compose Specification schema vendored in `check-jsonschema`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

SCHEMAS = Path(__file__).parent / "schemas"

# The oldest Kubernetes minor the manifests support, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())

# Custom resources: (apiVersion, kind) -> schema file under SCHEMAS.
CUSTOM_RESOURCE_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh/scaledobject_v1alpha1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1.json",
}


def kubernetes_errors(resource: dict[str, Any], version: str) -> list[str]:
    """Why `resource` is invalid for Kubernetes `version` (empty when it is valid)."""
    key = (resource.get("apiVersion"), resource.get("kind"))
    if key in CUSTOM_RESOURCE_SCHEMAS:
        errors = _schema_errors(_custom_resource_schema(CUSTOM_RESOURCE_SCHEMAS[key]), resource)
        # A CRD schema says only `metadata: object`; the API server checks ObjectMeta itself.
        shell = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": resource.get("metadata")}
        return errors + [f"metadata: {e}" for e in kubernetes_errors(shell, version)]
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in exc.path) or '<root>'}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no schema: {exc.message}"]
    return []


@cache
def _custom_resource_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return schema


@cache
def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def compose_errors(document: dict[str, Any]) -> list[str]:
    """Why `document` is not a valid Compose file (empty when it is valid)."""
    return _schema_errors(compose_schema(), document)


def _schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    ]


# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}, $VAR; $$ escapes.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(LookupError):
    """A ${VAR:?...} or ${VAR?...} whose variable is not set."""


def compose_variables(node: Any) -> list[tuple[str, str | None]]:
    """(name, operator) of every variable a Compose document interpolates."""
    found: list[tuple[str, str | None]] = []
    for text in _strings(node):
        for match in _INTERPOLATION.finditer(text):
            name = match.group("braced") or match.group("bare")
            if name:
                found.append((name, match.group("op")))
    return found


def interpolate(node: Any, environ: Mapping[str, str] | None = None) -> Any:
    """`node` with variables replaced as `docker compose config` does."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return str(value)
        return value or ""

    if isinstance(node, str):
        return _INTERPOLATION.sub(substitute, node)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []
