"""Every published event has a consumer, every consumer a producer; subjects live in contracts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest

from genbus.contracts import CONSUMERS, EVENT_BINDINGS, GENERATIONS_STREAM, SERVICES
from genbus.runtime.pull import GenbusBroker

ROOT = Path(__file__).resolve().parents[3]


def test_every_published_event_has_a_consumer() -> None:
    consumed = {spec.binding.name for spec in CONSUMERS}
    for service in SERVICES.values():
        for binding in service.publishes:
            assert binding.name in consumed, f"{service.name} publishes {binding.name} to nobody"


def test_every_consumer_has_a_producer() -> None:
    published = {b.name for s in SERVICES.values() for b in s.publishes}
    for spec in CONSUMERS:
        assert spec.binding.name in published, f"{spec.durable} waits for an event nobody sends"


def test_every_event_travels_on_the_stream() -> None:
    (root,) = GENERATIONS_STREAM.subjects
    prefix = root.removesuffix(">")
    assert all(b.wildcard.startswith(prefix) for b in EVENT_BINDINGS)


def test_consumers_have_unique_durable_names() -> None:
    names = [spec.durable for spec in CONSUMERS]
    assert len(names) == len(set(names))


def _registered(register: Any) -> set[tuple[str, str]]:
    broker = GenbusBroker()
    register(broker, cast(Any, None))
    assert not broker.subscribers, "consumers pull with nats-py, not through FastStream"
    return {(loop.subject, loop.durable) for loop in broker.pull_loops}


@pytest.mark.parametrize("service", ["dispatcher", "poller", "api"])
def test_services_subscribe_exactly_as_the_contracts_say(service: str) -> None:
    module = __import__(f"genbus.{service}.entrypoints.consumers", fromlist=["register_consumers"])
    expected = {(c.filter_subject, c.durable) for c in SERVICES[service].consumes}
    assert _registered(module.register_consumers) == expected


_SUBJECT_LITERAL = re.compile(r"""["'](generations|deadletter)\.[a-z_*>]""")


def test_no_subject_string_outside_contracts() -> None:
    offenders = []
    for folder in ("services", "libs"):
        for path in (ROOT / folder).rglob("*.py"):
            if "libs/contracts" in path.as_posix():
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if _SUBJECT_LITERAL.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == []
