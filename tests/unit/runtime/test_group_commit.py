"""Group commit: deliveries that arrive together are applied together, and one that cannot be
applied with the others is applied on its own without costing them their outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import uuid4

import pytest
from nats.aio.msg import Msg

from genbus.contracts import GenerationRequested
from genbus.runtime.consumer import Delivery, GroupCommit, RedeliverLater


def _delivery(label: str) -> Delivery[Any]:
    now = datetime.now(UTC)
    event = GenerationRequested(
        event_id=uuid4(),
        occurred_at=now,
        generation_id=uuid4(),
        user_id=label,
        provider_id="sim",
        operation_type="text_to_image",
        params={"prompt": label},
        deadline_at=now + timedelta(hours=1),
        reproducible_hash="0" * 64,
    )
    return Delivery(event, "subject", 1, {}, cast(Msg, None))


class Recorder:
    def __init__(self, *, batch_fails: bool = False, refuse: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.batch_fails = batch_fails
        self.refuse = refuse

    async def handler(self, delivery: Delivery[Any]) -> None:
        label = delivery.event.user_id
        self.singles.append(label)
        if label == self.refuse:
            raise RedeliverLater(0.5, "not yet")

    async def batch(self, deliveries: Sequence[Delivery[Any]]) -> None:
        self.batches.append([d.event.user_id for d in deliveries])
        if self.batch_fails:
            raise RuntimeError("one of them is bad")


async def test_deliveries_started_together_are_applied_in_one_call() -> None:
    recorder = Recorder()
    group = GroupCommit("c", recorder.handler, recorder.batch)

    await asyncio.gather(*(group.run(_delivery(x)) for x in ("a", "b", "c")))

    assert recorder.batches == [["a", "b", "c"]]
    assert recorder.singles == []


async def test_a_lone_delivery_goes_through_the_single_handler() -> None:
    recorder = Recorder()
    group = GroupCommit("c", recorder.handler, recorder.batch)

    await group.run(_delivery("a"))

    assert recorder.batches == []
    assert recorder.singles == ["a"]


async def test_a_failed_group_is_applied_one_by_one_with_each_outcome_its_own() -> None:
    recorder = Recorder(batch_fails=True, refuse="b")
    group = GroupCommit("c", recorder.handler, recorder.batch)

    outcomes = await asyncio.gather(
        *(group.run(_delivery(x)) for x in ("a", "b", "c")), return_exceptions=True
    )

    assert recorder.batches == [["a", "b", "c"]]
    assert recorder.singles == ["a", "b", "c"]
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], RedeliverLater)


async def test_later_arrivals_form_the_next_group() -> None:
    recorder = Recorder()
    group = GroupCommit("c", recorder.handler, recorder.batch)

    await asyncio.gather(*(group.run(_delivery(x)) for x in ("a", "b")))
    await asyncio.gather(*(group.run(_delivery(x)) for x in ("c", "d")))

    assert recorder.batches == [["a", "b"], ["c", "d"]]


async def test_a_cancelled_group_leaves_nobody_waiting() -> None:
    started = asyncio.Event()

    async def stuck(_: Sequence[Delivery[Any]]) -> None:
        started.set()
        await asyncio.Event().wait()

    async def never(_: Delivery[Any]) -> None:
        raise AssertionError("the group was not applied one by one")

    group = GroupCommit("c", never, stuck)
    runs = asyncio.gather(*(group.run(_delivery(x)) for x in ("a", "b")), return_exceptions=True)
    await asyncio.wait_for(started.wait(), 5)
    for task in list(group._flushing):
        task.cancel()

    outcomes = await asyncio.wait_for(runs, 5)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)


@pytest.mark.parametrize("size", [2, 17])
async def test_every_delivery_is_applied_exactly_once(size: int) -> None:
    recorder = Recorder()
    group = GroupCommit("c", recorder.handler, recorder.batch)

    await asyncio.gather(*(group.run(_delivery(str(i))) for i in range(size)))

    applied = [label for batch in recorder.batches for label in batch] + recorder.singles
    assert sorted(applied) == sorted(str(i) for i in range(size))
