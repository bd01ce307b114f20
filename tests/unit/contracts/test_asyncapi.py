"""The committed AsyncAPI document is the one the code generates, and covers what the services
really subscribe to and publish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest

from genbus.contracts import EVENT_BINDINGS, SERVICES
from genbus.contracts.asyncapi import DEFAULT_PATH, build_document, channel_id, main, render
from genbus.runtime.pull import GenbusBroker

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / DEFAULT_PATH


def test_committed_document_matches_the_code() -> None:
    assert COMMITTED.exists(), "run: python -m genbus.contracts.asyncapi --write"
    assert COMMITTED.read_text() == render(build_document()), (
        "docs/asyncapi.json is stale; run: python -m genbus.contracts.asyncapi --write"
    )


def test_check_mode_fails_on_a_stale_document(tmp_path: Path) -> None:
    stale = tmp_path / "asyncapi.json"
    stale.write_text("{}\n")
    assert main(["--path", str(stale)]) == 1
    assert main(["--write", "--path", str(stale)]) == 0
    assert main(["--path", str(stale)]) == 0


def _refs_resolve(document: dict[str, Any]) -> list[str]:
    broken = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target: Any = document
                for part in ref.removeprefix("#/").split("/"):
                    target = target.get(part) if isinstance(target, dict) else None
                if target is None:
                    broken.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return broken


def test_every_reference_resolves() -> None:
    assert _refs_resolve(build_document()) == []


def test_every_event_has_a_channel_message_and_schema() -> None:
    document = build_document()
    for binding in EVENT_BINDINGS:
        name = binding.model.__name__
        channel = document["channels"][channel_id(binding)]
        assert channel["address"] == f"{binding.subject_prefix}.{{provider_id}}"
        assert name in document["components"]["messages"]
        assert name in document["components"]["schemas"]
        required = set(document["components"]["schemas"][name]["required"])
        assert required == {n for n, f in binding.model.model_fields.items() if f.is_required()}


@pytest.mark.parametrize("service", ["dispatcher", "poller", "api"])
def test_receive_operations_are_what_the_service_subscribes(service: str) -> None:
    module = __import__(f"genbus.{service}.entrypoints.consumers", fromlist=["register_consumers"])
    broker = GenbusBroker()
    module.register_consumers(broker, cast(Any, None))
    subscribed = {(loop.durable, loop.subject) for loop in broker.pull_loops}
    operations = build_document()["operations"]
    documented = {
        (op_id, op["x-genbus-consumer"]["filter_subject"])
        for op_id, op in operations.items()
        if op["action"] == "receive"
        and op["tags"] == [{"name": service}]
        and "x-genbus-consumer" in op
    }
    assert documented == subscribed


def test_send_operations_are_the_topology() -> None:
    operations = build_document()["operations"]
    for service in SERVICES.values():
        for binding in service.publishes:
            op = operations[f"{service.name}_sends_{binding.name}"]
            assert op["action"] == "send"
            assert op["channel"] == {"$ref": f"#/channels/{channel_id(binding)}"}


def test_document_is_json() -> None:
    assert json.loads(render(build_document()))["asyncapi"] == "3.0.0"


def test_document_is_valid_asyncapi_3() -> None:
    schema = json.loads((Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json").read_text())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(build_document())
    ]
    assert errors == []
