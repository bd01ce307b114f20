"""Tiers, per-key limits, the daily quota, entitlements, prices and costs, on the fakes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from genbus.api.domain.errors import InvalidLimits, NotEntitled, QuotaExceeded
from genbus.api.domain.idempotency import IdempotencyClaim
from genbus.api.domain.limits import (
    Limits,
    Tiers,
    entitlement_problems,
    parse_limits,
    quota_resets_at,
)
from genbus.api.domain.pricing import PriceTable
from genbus.api.domain.requests import GenerationDraft
from genbus.api.domain.status import GenerationStatus
from genbus.api.service_layer.api_keys import issue_api_key, set_key_limits
from genbus.api.service_layer.handlers import on_generation_completed, on_generation_submitted
from genbus.api.service_layer.intake import Policy, create_generation, retry_generation
from genbus.api.service_layer.usage import today, usage
from genbus.contracts import REQUESTED, Asset, GenerationCompleted, GenerationSubmitted
from genbus.runtime.problems import FieldError
from tests.unit.api.fakes import LIMITS, NOW, OTHER_USER, USER, Catalog, FakeDatabase, generation

pytestmark = pytest.mark.service_layer

DRAFT = GenerationDraft(
    operation_type="text_to_video", provider_id="sim", params={"prompt": "p", "duration": 8}
)
PRICES = PriceTable.model_validate(
    {
        "sim": [
            {"quality": "1080p", "credits": 10, "per_second": 2},
            {"operation": "text_to_video", "credits": 1, "per_second": 0.5},
            {"credits": 3},
        ]
    }
)


class OptionsCatalog(Catalog):
    """The fakes' catalog, accepting every provider option."""

    def provider_options_problems(
        self, provider_id: str, operation_type: str, options: Mapping[str, Any]
    ) -> list[FieldError]:
        return []


async def _create(
    db: FakeDatabase, policy: Policy, draft: GenerationDraft = DRAFT, **kwargs: Any
) -> Any:
    kwargs.setdefault("now", NOW)
    return await create_generation(
        draft,
        kwargs.pop("user_id", USER),
        db.uow(),
        catalog=OptionsCatalog(),
        limits=LIMITS,
        policy=policy,
        **kwargs,
    )


def test_a_keys_overrides_replace_its_tiers_limits_and_null_means_unlimited() -> None:
    tiers = Tiers({"default": Limits(), "free": Limits(daily_quota=5, max_priority=3)}, "default")
    overrides = parse_limits({"daily_quota": 50, "max_priority": None})
    assert tiers.effective("free", None) == Limits(daily_quota=5, max_priority=3)
    assert tiers.effective("free", overrides) == Limits(daily_quota=50)
    assert tiers.effective(None, parse_limits({"max_in_flight": 2})) == Limits(max_in_flight=2)
    assert tiers.effective("gone", None) == Limits()  # an unknown tier: the default's
    assert overrides.as_json() == {"daily_quota": 50, "max_priority": None}
    with pytest.raises(InvalidLimits, match="daily_quot"):
        parse_limits({"daily_quot": 1})
    with pytest.raises(InvalidLimits, match="max_priority"):
        parse_limits({"max_priority": 11})
    with pytest.raises(ValueError, match="default tier"):
        Tiers({"free": Limits()}, "default")


def test_entitlements_name_every_field_the_key_may_not_use() -> None:
    limits = Limits(
        providers=frozenset({"pixverse"}),
        operations=frozenset({"text_to_image"}),
        models=frozenset({"owner/allowed"}),
        max_priority=4,
        provider_options=frozenset({"style"}),
    )
    params = {"model": "owner/other", "provider_options": {"style": "x", "motion": 1, "fps": 2}}
    problems = entitlement_problems(
        limits, provider_id="sim", operation_type="text_to_video", priority=5, params=params
    )
    assert [(p.field, p.code) for p in problems] == [
        ("provider_id", "not_entitled"),
        ("operation_type", "not_entitled"),
        ("params.model", "not_entitled"),
        ("priority", "not_entitled"),
        ("params.provider_options.fps", "not_entitled"),
        ("params.provider_options.motion", "not_entitled"),
    ]
    allowed = {"model": "owner/allowed", "provider_options": {"style": "x"}}
    assert not entitlement_problems(
        limits, provider_id="pixverse", operation_type="text_to_image", priority=4, params=allowed
    )
    # No model named: the provider's default model, allowed.
    assert not entitlement_problems(
        limits, provider_id="pixverse", operation_type="text_to_image", priority=0, params={}
    )


def test_the_first_matching_price_rule_prices_a_request() -> None:
    assert PRICES.estimate("sim", "text_to_video", {"quality": "1080p", "duration": 5}) == 20
    assert PRICES.estimate("sim", "text_to_video", {"quality": "720p", "duration": 8}) == 5
    assert PRICES.estimate("sim", "text_to_image", {"quality": "720p"}) == 3
    assert PRICES.estimate("pixverse", "text_to_video", {"duration": 5}) is None
    with pytest.raises(ValueError, match="quality"):
        PriceTable.model_validate({"sim": [{"quality": "4k", "credits": 1}]})


async def test_the_daily_quota_refuses_past_it_until_the_next_utc_midnight() -> None:
    db = FakeDatabase()
    policy = Policy(limits=Limits(daily_quota=2))
    for _ in range(2):
        await _create(db, policy)
    with pytest.raises(QuotaExceeded) as refused:
        await _create(db, policy)
    resets = datetime(2030, 1, 2, tzinfo=UTC)
    assert refused.value.resets_at == resets == quota_resets_at(NOW)
    assert refused.value.retry_after_s == (resets - NOW).total_seconds()
    assert len(db.generations) == 2
    assert len(db.events_of(REQUESTED)) == 2
    # Another user has a counter of its own; the next day starts afresh.
    await _create(db, policy, user_id=OTHER_USER)
    await _create(db, policy, now=resets + timedelta(seconds=1))
    assert len(db.generations) == 4
    used = await today(db.uow(), USER, policy.limits, NOW)
    assert (used.created, used.remaining, used.resets_at) == (2, 0, resets)


async def test_a_replay_is_not_counted_a_refused_request_is_not_counted_a_retry_is() -> None:
    db = FakeDatabase()
    policy = Policy(limits=Limits(daily_quota=2, max_priority=5))
    claim = IdempotencyClaim(key="k-1", fingerprint="f" * 64)
    first = await _create(db, policy, idempotency=claim)
    replay = await _create(db, policy, idempotency=claim)
    assert replay.replayed
    assert replay.generation.id == first.generation.id
    with pytest.raises(NotEntitled) as refused:
        await _create(db, policy, dataclasses.replace(DRAFT, priority=9))
    assert [e.field for e in refused.value.errors] == ["priority"]
    assert (await today(db.uow(), USER, policy.limits, NOW)).created == 1
    failed = generation(GenerationStatus.FAILED)
    db.add(failed)
    await retry_generation(
        failed.id, USER, db.uow(), catalog=Catalog(), limits=LIMITS, now=NOW, policy=policy
    )
    with pytest.raises(QuotaExceeded):
        await retry_generation(
            failed.id, USER, db.uow(), catalog=Catalog(), limits=LIMITS, now=NOW, policy=policy
        )
    assert (await today(db.uow(), USER, policy.limits, NOW)).created == 2


async def test_the_requested_event_carries_the_in_flight_cap_and_the_estimated_cost() -> None:
    db = FakeDatabase()
    created = await _create(db, Policy(limits=Limits(max_in_flight=3), prices=PRICES))
    assert created.generation.estimated_cost == 5  # 1 + 0.5 * 8 s (720p by default)
    [event] = db.events_of(REQUESTED)
    assert (event.max_in_flight, event.estimated_cost) == (3, 5)
    unpriced = await _create(db, Policy(), dataclasses.replace(DRAFT, provider_id="sim"))
    assert unpriced.generation.estimated_cost is None
    assert db.events_of(REQUESTED)[1].max_in_flight is None


def _completed(g: Any, **fields: Any) -> GenerationCompleted:
    return GenerationCompleted.model_validate(
        {
            "event_id": UUID(int=g.id.int ^ 1),
            "occurred_at": NOW,
            "generation_id": g.id,
            "user_id": g.user_id,
            "provider_id": g.provider_id,
            "operation_type": g.operation_type,
            "status": "completed",
            "asset": Asset(url="https://cdn.example.com/a.mp4", media_type="video/mp4"),
            "attempt": 1,
            "account_id": "acct-1",
            **fields,
        }
    )


async def test_the_actual_cost_is_recorded_when_reported_and_usage_sums_it() -> None:
    db = FakeDatabase()
    with_cost = generation(GenerationStatus.PROCESSING, estimated_cost=5.0)
    without = generation(GenerationStatus.PROCESSING, estimated_cost=5.0)
    db.add(with_cost, without)
    done = await on_generation_completed(_completed(with_cost, cost=4.5), db.uow(), now=NOW)
    assert done is not None
    assert done.actual_cost == 4.5
    # An event of a producer that does not know `cost` (the field absent): no actual cost.
    older = _completed(without).model_dump(mode="json", exclude={"cost"})
    assert "cost" not in older
    done = await on_generation_completed(
        GenerationCompleted.model_validate(older), db.uow(), now=NOW
    )
    assert done is not None
    assert done.actual_cost is None
    report = await usage(
        db.uow(), start=NOW - timedelta(hours=1), end=NOW, group_by="account", now=NOW
    )
    assert [(r.key, r.generations, r.actual_cost, r.with_actual_cost) for r in report.rows] == [
        ("acct-1", 2, 4.5, 1)
    ]
    assert (report.total.estimated_cost, report.total.completed) == (10.0, 2)


async def test_operators_set_and_clear_a_keys_tier_and_overrides() -> None:
    db = FakeDatabase()
    tiers = Tiers({"default": Limits(), "free": Limits(daily_quota=5)}, "default")
    issued = await issue_api_key(db.uow(), user_id=USER, name="k", now=NOW, tier="free")
    key_id = issued.key.id
    with pytest.raises(InvalidLimits, match="no such tier"):
        await issue_api_key(db.uow(), user_id=USER, name="k", now=NOW, tier="gold", tiers=tiers)
    key = await set_key_limits(
        db.uow(), key_id, tiers=tiers, overrides={"max_priority": 3, "providers": ["sim"]}
    )
    assert key.tier == "free"
    assert tiers.effective(key.tier, key.overrides) == Limits(
        daily_quota=5, max_priority=3, providers=frozenset({"sim"})
    )
    key = await set_key_limits(
        db.uow(), key_id, tiers=tiers, default_tier=True, clear=["providers"]
    )
    assert (key.tier, tiers.effective(key.tier, key.overrides)) == (None, Limits(max_priority=3))
    with pytest.raises(InvalidLimits, match="no such limit"):
        await set_key_limits(db.uow(), key_id, tiers=tiers, clear=["colour"])
    with pytest.raises(InvalidLimits):
        await set_key_limits(db.uow(), key_id, tiers=tiers, overrides={"daily_quota": -1})


async def test_a_cost_the_submit_answer_told_is_the_actual_cost_unless_the_end_says_more() -> None:
    db = FakeDatabase()
    g = generation(GenerationStatus.PENDING)
    db.add(g)
    submitted = GenerationSubmitted.model_validate(
        {
            "event_id": UUID(int=g.id.int ^ 2),
            "occurred_at": NOW,
            "generation_id": g.id,
            "user_id": g.user_id,
            "provider_id": g.provider_id,
            "operation_type": g.operation_type,
            "account_id": "acct-1",
            "provider_job_id": "301",
            "attempt": 1,
            "deadline_at": NOW + timedelta(hours=1),
            "cost": 45,
        }
    )
    processing = await on_generation_submitted(submitted, db.uow(), now=NOW)
    assert processing is not None
    assert processing.actual_cost == 45
    done = await on_generation_completed(_completed(g), db.uow(), now=NOW)  # no cost: kept
    assert done is not None
    assert done.actual_cost == 45
