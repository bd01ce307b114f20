"""Account selection: preferred when eligible, then priority, fewest busy, least recently used."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from genbus.dispatcher.domain.backoff import backoff_delay
from genbus.dispatcher.domain.model import AccountCandidate, rank_accounts, servable_pairs

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def account(
    id: str,
    *,
    busy: int = 0,
    max_concurrent: int = 2,
    priority: int = 0,
    used_ago_s: float | None = None,
    operations: frozenset[str] | None = None,
    provider_id: str = "sim",
) -> AccountCandidate:
    return AccountCandidate(
        id=id,
        provider_id=provider_id,
        operations=operations,
        max_concurrent=max_concurrent,
        priority=priority,
        busy=busy,
        last_used_at=None if used_ago_s is None else NOW - timedelta(seconds=used_ago_s),
    )


def ids(accounts: list[AccountCandidate]) -> list[str]:
    return [a.id for a in accounts]


def test_full_accounts_are_not_eligible() -> None:
    ranked = rank_accounts([account("a", busy=2), account("b", busy=1)], "sim", "text_to_video")
    assert ids(ranked) == ["b"]


def test_preferred_account_first_when_eligible() -> None:
    candidates = [account("a", priority=5), account("b")]
    assert ids(rank_accounts(candidates, "sim", "text_to_video", "b")) == ["b", "a"]
    full_preferred = [account("a", priority=5), account("b", busy=2)]
    assert ids(rank_accounts(full_preferred, "sim", "text_to_video", "b")) == ["a"]


def test_priority_then_fewest_busy_then_least_recently_used() -> None:
    candidates = [
        account("low", priority=0),
        account("busy", priority=1, busy=1, max_concurrent=3),
        account("recent", priority=1, used_ago_s=1),
        account("old", priority=1, used_ago_s=100),
    ]
    assert ids(rank_accounts(candidates, "sim", "text_to_video")) == [
        "old",
        "recent",
        "busy",
        "low",
    ]


def test_provider_and_operation_must_match() -> None:
    candidates = [
        account("images", operations=frozenset({"text_to_image"})),
        account("other", provider_id="pixverse"),
        account("any"),
    ]
    assert ids(rank_accounts(candidates, "sim", "text_to_video")) == ["any"]
    assert ids(rank_accounts(candidates, "sim", "text_to_image")) == ["images", "any"]


def test_servable_pairs_only_count_free_accounts() -> None:
    any_op, pairs = servable_pairs(
        [
            account("a", busy=2),
            account("b", provider_id="pixverse"),
            account("c", operations=frozenset({"text_to_image"}), provider_id="replicate"),
        ]
    )
    assert any_op == ["pixverse"]
    assert pairs == ["replicate:text_to_image"]


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(tries, 0.5, 4.0, rng) for tries in range(1, 8)]
    assert 0.25 <= delays[0] <= 0.5
    assert 1.0 <= delays[2] <= 2.0
    assert all(d <= 4.0 for d in delays)
    assert delays[-1] >= 2.0
