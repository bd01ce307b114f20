"""The consumers' table: every handler's dependencies can be given, and each consumer of the
contracts has exactly one entry."""

from __future__ import annotations

import inspect

import pytest

from genbus.contracts import SERVICES
from genbus.dispatcher.entrypoints.consumers import EVENT_HANDLERS, handler_dependencies
from tests.unit.dispatcher.fakes import SAFE, FakeAdapter, make_world

pytestmark = pytest.mark.service_layer


def test_every_handler_names_only_dependencies_the_table_can_give() -> None:
    available = handler_dependencies(make_world(FakeAdapter([], guarantees=SAFE)).deps)
    for spec, handling in EVENT_HANDLERS.items():
        params = inspect.signature(handling.handler).parameters.values()
        named = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert named <= available.keys(), spec.durable
        assert named, f"{spec.durable}: every dispatcher handler wakes the scheduler"


def test_the_table_covers_every_consumer_of_the_contracts() -> None:
    assert set(EVENT_HANDLERS) == set(SERVICES["dispatcher"].consumes)
