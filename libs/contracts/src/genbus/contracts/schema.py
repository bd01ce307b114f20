"""JSON Schemas of the events, and the rule that decides whether a change breaks consumers.

The committed schemas (`schemas/*.json`) are the published contract. `python -m
genbus.contracts.schema --write` refreshes them after a compatible change; a breaking change
(a removed or renamed field, a changed type, a new required field) needs a new event version.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from genbus.contracts.bindings import EVENT_BINDINGS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def current_schemas() -> dict[str, dict[str, Any]]:
    """Event name → JSON Schema of its model, as consumers validate it."""
    return {
        f"{b.model.__name__}.v{b.model.SCHEMA_VERSION}": b.model.model_json_schema(
            mode="validation"
        )
        for b in EVENT_BINDINGS
    }


def committed_schemas() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.json"))}


def write_schemas() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in current_schemas().items():
        (SCHEMA_DIR / f"{name}.json").write_text(
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Why `new` would break a consumer or producer written against `old` (empty: compatible)."""
    problems: list[str] = []
    old = _resolve(old, old)
    new_root = new
    new = _resolve(new, new)
    problems += _compare(old, old, new, new_root, path or "<event>")
    return problems


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = root["$defs"][ref.removeprefix("#/$defs/")]
        return resolved
    return schema


def _unwrap_nullable(schema: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`X | None` as (X, True); anything else as (itself, False). References are resolved."""
    schema = _resolve(schema, root)
    members = schema.get("anyOf")
    if isinstance(members, list) and {"type": "null"} in members and len(members) == 2:
        (other,) = [m for m in members if m != {"type": "null"}]
        return _resolve(other, root), True
    return schema, False


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _shape(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A comparable summary of a schema's type, ignoring titles, descriptions and defaults."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return ("anyOf", tuple(sorted(str(_shape(s, root)) for s in schema["anyOf"])))
    if "enum" in schema or "const" in schema:
        return ("enum", tuple(sorted(map(str, schema.get("enum", [schema.get("const")])))))
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return ("object", tuple(sorted(schema["properties"])))
    if kind == "array":
        return ("array", _shape(schema.get("items", {}), root))
    return (kind, schema.get("format"))


def _compare(
    old: dict[str, Any],
    old_root: dict[str, Any],
    new: dict[str, Any],
    new_root: dict[str, Any],
    path: str,
) -> list[str]:
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, old_field in old_props.items():
        where = f"{path}.{name}"
        if name not in new_props:
            problems.append(f"{where}: removed or renamed")
            continue
        old_f, old_null = _unwrap_nullable(old_field, old_root)
        new_f, new_null = _unwrap_nullable(new_props[name], new_root)
        if old_null and not new_null:
            problems.append(f"{where}: no longer nullable")
        if _is_object(old_f) and _is_object(new_f):
            problems += _compare(old_f, old_root, new_f, new_root, where)
        elif _shape(old_f, old_root) != _shape(new_f, new_root):
            problems.append(f"{where}: type changed")
    old_required = set(old.get("required", []))
    for name in sorted(set(new.get("required", [])) - old_required):
        problems.append(f"{path}.{name}: newly required")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="refresh the committed schemas")
    args = parser.parse_args()
    if args.write:
        write_schemas()
    for name, schema in current_schemas().items():
        committed = committed_schemas().get(name)
        state = "new" if committed is None else ("same" if committed == schema else "changed")
        print(f"{name}: {state}")


if __name__ == "__main__":
    main()
