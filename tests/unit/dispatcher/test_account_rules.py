"""Account rules beyond ranking: the daily cap bounds free slots; `cooling_down` is derived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from genbus.dispatcher.domain.model import (
    AccountCandidate,
    AccountStatus,
    account_status,
    rank_accounts,
    servable_pairs,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def account(
    id: str,
    *,
    busy: int = 0,
    max_concurrent: int = 4,
    priority: int = 0,
    daily_cap: int | None = None,
    used_today: int = 0,
) -> AccountCandidate:
    return AccountCandidate(
        id=id,
        provider_id="sim",
        operations=None,
        max_concurrent=max_concurrent,
        priority=priority,
        busy=busy,
        last_used_at=None,
        daily_cap=daily_cap,
        used_today=used_today,
    )


@pytest.mark.parametrize(
    ("busy", "daily_cap", "used_today", "free"),
    [
        (0, None, 500, 4),  # no cap: only concurrency counts
        (1, 10, 2, 3),
        (0, 10, 8, 2),  # the cap leaves fewer than the free slots
        (0, 10, 10, 0),
        (0, 10, 12, 0),  # over the cap (lowered today): never negative
        (4, 10, 0, 0),
    ],
)
def test_free_slots_are_bounded_by_concurrency_and_the_daily_cap(
    busy: int, daily_cap: int | None, used_today: int, free: int
) -> None:
    assert account("a", busy=busy, daily_cap=daily_cap, used_today=used_today).free_slots == free


def test_an_account_at_its_daily_cap_is_not_eligible_even_when_preferred() -> None:
    capped = account("capped", priority=9, daily_cap=5, used_today=5)
    ranked = rank_accounts([capped, account("other")], "sim", "text_to_video", "capped")
    assert [a.id for a in ranked] == ["other"]
    assert servable_pairs([capped]) == ([], [])


def test_the_preferred_account_beats_priority_and_load() -> None:
    accounts = [account("busy-low", busy=3, priority=0), account("idle-high", priority=9)]
    ranked = rank_accounts(accounts, "sim", "text_to_video", "busy-low")
    assert [a.id for a in ranked] == ["busy-low", "idle-high"]


@pytest.mark.parametrize(
    ("stored", "cooldown_s", "shown"),
    [
        ("active", None, AccountStatus.ACTIVE),
        ("active", 30, AccountStatus.COOLING_DOWN),
        ("active", -30, AccountStatus.ACTIVE),  # the cooldown is over
        ("exhausted", 30, AccountStatus.EXHAUSTED),
        ("disabled", 30, AccountStatus.DISABLED),
    ],
)
def test_cooling_down_is_an_active_account_with_a_future_cooldown(
    stored: str, cooldown_s: float | None, shown: AccountStatus
) -> None:
    until = None if cooldown_s is None else NOW + timedelta(seconds=cooldown_s)
    assert account_status(stored, until, NOW) is shown
