"""Fair share and wait reasons in the service layer, on the fake store (which claims in the
same order as the SQL one: checked against Postgres in the integration tests)."""

from __future__ import annotations

import pytest

from genbus.contracts import WAITING, GenerationRequested, GenerationWaiting, WaitingReason
from genbus.dispatcher.domain.model import AccountStatus
from genbus.dispatcher.service_layer import handlers
from tests.unit.dispatcher.fakes import World, make_world, requested

pytestmark = pytest.mark.service_layer


def _of(user: str, *, cap: int | None = None) -> GenerationRequested:
    return requested().model_copy(update={"user_id": user, "max_in_flight": cap})


async def _intake(world: World, events: list[GenerationRequested]) -> None:
    await handlers.on_generations_requested(events, world.store.uow(), wake=world.deps.wake.set)


def _told(world: World) -> list[tuple[str, WaitingReason, int]]:
    return [
        (str(e.generation_id), e.reason, e.sequence)
        for e in world.store.events_of(WAITING)
        if isinstance(e, GenerationWaiting)
    ]


async def test_the_user_with_fewer_in_flight_is_served_first() -> None:
    world = make_world()
    world.store.account().max_concurrent = 10
    alice = [_of("alice") for _ in range(3)]
    bob = [_of("bob") for _ in range(2)]
    await _intake(world, [*alice, *bob])
    claimed = [(await world.claim()).claim.generation_id for _ in range(5)]
    order = [alice[0], bob[0], alice[1], bob[1], alice[2]]
    assert claimed == [e.generation_id for e in order]


async def test_a_capped_user_is_passed_over_and_told_why() -> None:
    world = make_world()
    world.store.account().max_concurrent = 10
    first, second = _of("capped", cap=1), _of("capped", cap=1)
    await _intake(world, [first])
    assert (await world.claim()).claim.generation_id == first.generation_id
    other = _of("other")
    await _intake(world, [second, other])
    assert (await world.claim()).claim.generation_id == other.generation_id
    async with world.store.uow() as uow:
        assert await uow.jobs.claim_next("x", 30) is None  # the capped one waits
    assert _told(world) == [(str(second.generation_id), WaitingReason.USER_AT_CAPACITY, 1)]


async def test_a_provider_with_no_usable_account_is_told_once() -> None:
    world = make_world()
    world.store.account().status = AccountStatus.DISABLED
    event = _of("someone")
    await _intake(world, [event])
    await _intake(world, [event])  # a redelivery: already queued, nothing new to tell
    assert _told(world) == [(str(event.generation_id), WaitingReason.PROVIDER_UNAVAILABLE, 1)]
