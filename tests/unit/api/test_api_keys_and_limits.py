"""API key shape and digest, the token buckets, idempotency fingerprints, cursors, wait reasons."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from genbus.api.domain.api_keys import (
    Principal,
    digest_api_key,
    display_prefix,
    looks_like_api_key,
    new_api_key,
)
from genbus.api.domain.errors import InvalidRequest
from genbus.api.domain.idempotency import request_fingerprint
from genbus.api.domain.listing import Cursor
from genbus.api.domain.model import Generation, WaitReason
from genbus.api.domain.rate_limit import TokenBuckets, retry_after_header
from genbus.api.domain.status import GenerationStatus

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_keys_are_random_well_formed_and_stored_as_sha256() -> None:
    keys = {new_api_key() for _ in range(100)}
    assert len(keys) == 100
    key = keys.pop()
    assert looks_like_api_key(key)
    assert digest_api_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert display_prefix(key) == key[:12]
    assert key.startswith("gbk_")
    for bad in ("", "gbk_", key + "x", key[:-1], "Bearer " + key, "gbk_" + "é" * 43):
        assert not looks_like_api_key(bad)


def test_an_admin_reads_as_anyone_others_only_as_themselves() -> None:
    assert Principal("alice").reads_as == "alice"
    assert Principal("root", uuid4(), admin=True).reads_as is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [None, None, None]
    wait = buckets.take("k")
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait or 0) == "1"
    assert buckets.take("other") is None  # every key has its own bucket
    clock.now = 0.5
    assert buckets.take("k") is None
    assert buckets.take("k") == pytest.approx(0.5)
    clock.now = 100.0  # refills up to the burst, no further
    assert [buckets.take("k") is None for _ in range(4)] == [True, True, True, False]


def test_forgotten_buckets_start_full_again() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=Clock(), max_buckets=2)
    assert buckets.take("a") is None
    assert buckets.take("a") is not None
    buckets.take("b")
    buckets.take("c")  # "a" is the least recently used: forgotten
    assert buckets.take("a") is None


def test_the_fingerprint_covers_the_operation_and_the_body_not_key_order() -> None:
    a = request_fingerprint("create_generation", {"x": 1, "y": [1, 2]})
    assert a == request_fingerprint("create_generation", {"y": [1, 2], "x": 1})
    assert a != request_fingerprint("create_job", {"x": 1, "y": [1, 2]})
    assert a != request_fingerprint("create_generation", {"x": 2, "y": [1, 2]})


def test_a_cursor_round_trips_and_anything_else_is_invalid() -> None:
    cursor = Cursor(datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "x", "e30", "W10", "bnVsbA", "eyJ0IjogMSwgImkiOiAyfQ", "a" * 300, "%%"):
        with pytest.raises(InvalidRequest) as caught:
            Cursor.decode(bad)
        assert [e.field for e in caught.value.errors] == ["cursor"]


def _generation(**changes: object) -> Generation:
    base = Generation(
        id=UUID(int=1),
        user_id="u",
        operation_type="text_to_video",
        provider_id="sim",
        status=GenerationStatus.PENDING,
        params={},
        canonical_params={},
        inputs=[],
        canonical_inputs=[],
        priority=5,
        scheduled_at=None,
        deadline_at=NOW + timedelta(hours=1),
        reproducible_hash="0" * 64,
        name=None,
        metadata={},
        attempt=0,
        account_id=None,
        provider_job_id=None,
        asset=None,
        error=None,
        created_at=NOW,
        updated_at=NOW,
        submitted_at=None,
        completed_at=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_wait_reason() -> None:
    assert _generation().wait_reason(NOW) is WaitReason.WAITING_FOR_ACCOUNT
    later = _generation(scheduled_at=NOW + timedelta(seconds=1))
    assert later.wait_reason(NOW) is WaitReason.SCHEDULED
    assert later.wait_reason(NOW + timedelta(seconds=1)) is WaitReason.WAITING_FOR_ACCOUNT
    for status in set(GenerationStatus) - {GenerationStatus.PENDING}:
        assert _generation(status=status).wait_reason(NOW) is None
