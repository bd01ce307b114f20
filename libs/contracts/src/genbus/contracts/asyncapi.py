"""The AsyncAPI 3.0 document of every genbus channel and message, generated from the contracts.

Channels come from the event bindings, who sends and who receives from the topology, payloads
from the event models' JSON Schemas. The committed copy is `docs/asyncapi.json`;
`python -m genbus.contracts.asyncapi --write` refreshes it (run from the repository root) and
a test fails when the code and the committed document differ.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from genbus.contracts.bindings import EVENT_BINDINGS, EventBinding
from genbus.contracts.common import PROVIDER_ID_PATTERN
from genbus.contracts.events import Event
from genbus.contracts.notifications import GENERATION_CHANGED
from genbus.contracts.streams import (
    DEAD_LETTER_ROOT,
    DEAD_LETTER_STREAM,
    GENERATIONS_STREAM,
    ConsumerSpec,
)
from genbus.contracts.topology import SERVICES

DEFAULT_PATH = Path("docs/asyncapi.json")
_REF_TEMPLATE = "#/components/schemas/{model}"
DEAD_LETTER_CHANNEL = "deadletter"
NOTIFICATION_CHANNEL = "notify_generation_changed"
#: Who publishes and subscribes to `GENERATION_CHANGED` (core NATS, outside the event topology).
NOTIFICATION_SERVICES = ("api",)


def channel_id(binding: EventBinding[Event]) -> str:
    return f"generations_{binding.name}"


def _summary(model: type[BaseModel]) -> str:
    return (inspect.getdoc(model) or model.__name__).splitlines()[0]


def _event_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "Nats-Msg-Id": {
                "type": "string",
                "format": "uuid",
                "description": "= event_id; JetStream drops a duplicate within the window",
            },
            "Genbus-Event-Type": {"type": "string", "description": "= event_type"},
            "Content-Type": {"type": "string", "const": "application/json"},
            "traceparent": {
                "type": "string",
                "description": "W3C trace context of the generation's trace (when traced)",
            },
        },
        "required": ["Nats-Msg-Id", "Genbus-Event-Type"],
    }


def _dead_letter_headers() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "The original message's headers (its Nats-Msg-Id renamed), plus:",
        "properties": {
            "Genbus-Dead-Letter-Reason": {**text, "description": "why it can't be processed"},
            "Genbus-Dead-Letter-Consumer": {**text, "description": "the durable that gave up"},
            "Genbus-Original-Subject": text,
            "Genbus-Original-Sequence": text,
            "Genbus-Original-Msg-Id": text,
            "Genbus-Deliveries": text,
            "Genbus-Dead-Lettered-At": {**text, "format": "date-time"},
        },
        "required": ["Genbus-Dead-Letter-Reason", "Genbus-Dead-Letter-Consumer"],
    }


def _consumer_extension(spec: ConsumerSpec) -> dict[str, Any]:
    return {
        "stream": GENERATIONS_STREAM.name,
        "durable": spec.durable,
        "filter_subject": spec.filter_subject,
        "ack": "explicit, after the effect is durable",
        "ack_wait_s": spec.ack_wait_s,
        "max_deliver": spec.max_deliver,
        "max_ack_pending": spec.max_ack_pending,
        "retry_delays_s": list(spec.retry_delays_s),
    }


def build_document() -> dict[str, Any]:
    """The AsyncAPI document, as plain JSON data (deterministic)."""
    models: list[type[BaseModel]] = [b.model for b in EVENT_BINDINGS]
    models.append(GENERATION_CHANGED.model)
    _, schema = models_json_schema([(m, "validation") for m in models], ref_template=_REF_TEMPLATE)
    schemas: dict[str, Any] = schema.get("$defs", {})

    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for binding in EVENT_BINDINGS:
        name = binding.model.__name__
        messages[name] = {
            "name": name,
            "title": name,
            "summary": _summary(binding.model),
            "contentType": "application/json",
            "headers": _event_headers(),
            "payload": {"$ref": _REF_TEMPLATE.format(model=name)},
            "x-schema-version": binding.model.SCHEMA_VERSION,
        }
        channels[channel_id(binding)] = {
            "address": f"{binding.subject_prefix}.{{provider_id}}",
            "title": binding.subject_prefix,
            "description": f"{name} events, one subject per provider; "
            f"stored in the JetStream stream {GENERATIONS_STREAM.name}.",
            "parameters": {
                "provider_id": {"description": f"provider id, pattern {PROVIDER_ID_PATTERN}"}
            },
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "DeadLetter",
        "summary": "A message a consumer could never process, kept with why; replayable.",
        "headers": _dead_letter_headers(),
        "payload": {"description": "the original message's payload, unchanged"},
    }
    channels[DEAD_LETTER_CHANNEL] = {
        "address": f"{DEAD_LETTER_ROOT}.{{consumer}}.{{original_subject}}",
        "title": f"{DEAD_LETTER_ROOT}.>",
        "description": f"Dead letters, in the JetStream stream {DEAD_LETTER_STREAM.name}.",
        "parameters": {
            "consumer": {"description": "durable name of the consumer that gave up"},
            "original_subject": {"description": "the subject the message was published on"},
        },
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    changed = GENERATION_CHANGED.model.__name__
    messages[changed] = {
        "name": changed,
        "title": changed,
        "summary": _summary(GENERATION_CHANGED.model),
        "contentType": "application/json",
        "payload": {"$ref": _REF_TEMPLATE.format(model=changed)},
    }
    channels[NOTIFICATION_CHANNEL] = {
        "address": GENERATION_CHANGED.subject,
        "title": GENERATION_CHANGED.subject,
        "description": "Core NATS (not JetStream, not durable): a hint to look again.",
        "messages": {changed: {"$ref": f"#/components/messages/{changed}"}},
    }

    operations: dict[str, Any] = {}
    for service in SERVICES.values():
        for binding in service.publishes:
            ch, name = channel_id(binding), binding.model.__name__
            operations[f"{service.name}_sends_{binding.name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{ch}"},
                "messages": [{"$ref": f"#/channels/{ch}/messages/{name}"}],
                "summary": f"{service.name} publishes {name} (outbox or direct, "
                "Nats-Msg-Id = event_id)",
                "tags": [{"name": service.name}],
            }
        for spec in service.consumes:
            ch, name = channel_id(spec.binding), spec.binding.model.__name__
            operations[spec.durable] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{ch}"},
                "messages": [{"$ref": f"#/channels/{ch}/messages/{name}"}],
                "summary": f"{service.name} consumes {name} with the durable {spec.durable}",
                "tags": [{"name": service.name}],
                "x-genbus-consumer": _consumer_extension(spec),
            }
        if service.consumes:
            operations[f"{service.name}_sends_deadletter"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{DEAD_LETTER_CHANNEL}"},
                "messages": [{"$ref": f"#/channels/{DEAD_LETTER_CHANNEL}/messages/DeadLetter"}],
                "summary": f"{service.name}'s consumers dead-letter what they can never process",
                "tags": [{"name": service.name}],
            }
    for service_name in NOTIFICATION_SERVICES:
        for action, verb in (("send", "sends"), ("receive", "receives")):
            operations[f"{service_name}_{verb}_generation_changed"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{NOTIFICATION_CHANNEL}"},
                "messages": [{"$ref": f"#/channels/{NOTIFICATION_CHANNEL}/messages/{changed}"}],
                "tags": [{"name": service_name}],
            }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "genbus",
            "version": "1",
            "description": "Events between the genbus services (api, dispatcher, poller) "
            "and their other subscribers. Generated by `python -m genbus.contracts.asyncapi "
            "--write` from genbus.contracts; do not edit by hand.",
            "tags": [{"name": name} for name in SERVICES],
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "NATS with JetStream (NATS_URL; several URLs for a cluster)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="refresh the committed document")
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    current = render(build_document())
    committed = args.path.read_text() if args.path.exists() else None
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(current)
        print(f"{args.path}: written")
        return 0
    state = "missing" if committed is None else ("same" if committed == current else "changed")
    print(f"{args.path}: {state}")
    return 0 if state == "same" else 1


if __name__ == "__main__":
    sys.exit(main())
