"""Admission control's decision and live-status stream caps, in memory (no database)."""

from __future__ import annotations

import pytest

from genbus.api.adapters.backlog import Backlog, Snapshot
from genbus.api.config import ApiSettings
from genbus.api.domain.errors import Overloaded, TooManyPending, TooManyStreams
from genbus.api.entrypoints.http.app import create_app
from genbus.api.service_layer.admission import (
    AdmissionGate,
    Bounds,
    count_caps,
    retry_after_s,
)
from genbus.api.service_layer.stream_slots import StreamSlots


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Transactions:
    """Transaction ids as Postgres hands them out, and snapshots of what has committed."""

    def __init__(self) -> None:
        self._next = 700
        self.running: set[int] = set()

    def begin(self) -> int:
        self._next += 1
        self.running.add(self._next)
        return self._next

    def commit(self, transaction_id: int) -> None:
        self.running.remove(transaction_id)

    def committed(self) -> int:
        transaction_id = self.begin()
        self.commit(transaction_id)
        return transaction_id

    def snapshot(self) -> Snapshot:
        xmax = self._next + 1
        return Snapshot(min(self.running, default=xmax), xmax, frozenset(self.running))


def gate(clock: Clock, *, pending: int = 10, outbox: int = 0, per_user: int = 0) -> AdmissionGate:
    return AdmissionGate(Bounds(pending, outbox, per_user), clock, stale_after_s=5.0)


def backlog(
    tx: Transactions, pending: int, outbox: int = 0, by_user: dict[str, int] | None = None
) -> Backlog:
    return Backlog(pending, outbox, tx.snapshot(), by_user or {})


def read(g: AdmissionGate, read_backlog: Backlog) -> None:
    g.begin_sample()
    g.observe(read_backlog)


def test_retry_after_is_the_time_to_drain_the_excess_clamped() -> None:
    assert retry_after_s(10, 2.0) == 5
    assert retry_after_s(1, 100.0) == 1  # never 0
    assert retry_after_s(10_000, 1.0) == 60
    assert retry_after_s(5, 0.0) == 60  # not draining: the longest
    assert retry_after_s(5, None) == 60


def test_a_snapshot_sees_what_committed_before_it_and_nothing_after() -> None:
    snapshot = Snapshot.parse("705:712:707,709")
    assert snapshot == Snapshot(705, 712, frozenset({707, 709}))
    assert [t for t in range(700, 715) if snapshot.sees(t)] == [
        700, 701, 702, 703, 704, 705, 706, 708, 710, 711
    ]  # fmt: skip
    assert Snapshot.parse("9:9:") == Snapshot(9, 9)


def test_nothing_is_refused_before_the_first_read_or_on_a_stale_one() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock)
    assert g.check("u") is None
    read(g, backlog(tx, pending=50))
    assert g.check("u") is not None
    clock.now += 6.0  # no successful read for longer than stale_after_s
    assert g.check("u") is None


def test_refused_at_the_bound_counting_this_replicas_own_creations() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock, pending=3)
    read(g, backlog(tx, pending=1))
    assert g.check("u") is None
    g.admitted("u", tx.committed())
    assert g.check("u") is None
    g.admitted("u", tx.committed())
    refusal = g.check("u")  # 1 read + 2 created since = 3: at the bound
    assert refusal is not None
    assert refusal.reason == "pending"
    assert isinstance(refusal.error, Overloaded)
    assert refusal.error.code == "overloaded"
    # A read that sees them replaces the local count (no double counting)...
    read(g, backlog(tx, pending=3))
    assert g.estimate() == (3, 0)
    # ...and one that sees the backlog drained admits again.
    read(g, backlog(tx, pending=2))
    assert g.check("u") is None


def test_a_creation_is_counted_once_whichever_order_commit_read_and_report_come_in() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock, pending=3)
    read(g, backlog(tx, pending=0))
    # Committed before the read's snapshot, reported only after the read began (the race
    # that used to count it twice and refuse the third creation under a bound of 3)...
    early = tx.committed()
    g.begin_sample()
    late = tx.begin()  # ...and one still committing when the snapshot is taken.
    snapshot_read = backlog(tx, pending=1, outbox=1)
    tx.commit(late)
    g.admitted("u", early)
    g.admitted("u", late)
    assert g.estimate() == (2, 2)  # before the read returns: both count, once each
    g.observe(snapshot_read)
    assert g.estimate() == (2, 2)  # the read counted `early`; `late` is still ours to add
    assert g.check("u") is None
    # Reported after a read that saw it: not added at all.
    seen = tx.committed()
    read(g, backlog(tx, pending=3, outbox=3))
    g.admitted("u", seen)
    assert g.estimate() == (3, 3)
    assert g.check("u") is not None


def test_creations_are_kept_while_reads_fail() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock, pending=3)
    read(g, backlog(tx, pending=0))
    g.admitted("u", tx.committed())
    g.begin_sample()  # this read fails: observe is never called
    g.admitted("u", tx.committed())
    g.begin_sample()
    g.admitted("u", tx.committed())
    assert g.estimate()[0] == 3
    assert g.check("u") is not None


def test_retry_after_follows_the_observed_drain_rate() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock, pending=100)
    read(g, backlog(tx, pending=300))
    clock.now += 1.0
    read(g, backlog(tx, pending=280))  # drained 20 in 1 s
    assert g.pending_drain == pytest.approx(20.0)
    refusal = g.check("u")
    assert refusal is not None
    assert refusal.error.retry_after_s == 10  # 181 to go below the bound, at 20/s
    # Creations of this replica count as inflow: the same fall with 20 created is 40/s drained.
    for _ in range(20):
        g.admitted("u", tx.committed())
    clock.now += 1.0
    read(g, backlog(tx, pending=260))
    assert g.pending_drain == pytest.approx(0.7 * 20.0 + 0.3 * 40.0)


def test_the_outbox_backlog_refuses_with_its_own_reason_and_rate() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock, pending=0, outbox=5)
    read(g, backlog(tx, pending=10_000, outbox=4))  # the pending bound is disabled
    assert g.check("u") is None
    g.admitted("u", tx.committed())  # its event is one more outbox row
    refusal = g.check("u")
    assert refusal is not None
    assert refusal.reason == "outbox"
    assert refusal.error.code == "overloaded"
    assert refusal.error.retry_after_s == 60  # nothing published yet: no drain seen


def test_a_users_own_backlog_is_bounded_without_refusing_others() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock, pending=100, per_user=2)
    read(g, backlog(tx, pending=3, by_user={"greedy": 2, "other": 1}))
    refusal = g.check("greedy")
    assert refusal is not None
    assert refusal.reason == "user_pending"
    assert isinstance(refusal.error, TooManyPending)
    assert refusal.error.code == "too_many_pending"
    assert g.check("other") is None
    created = tx.committed()
    g.admitted("other", created)
    assert g.check("other") is not None
    assert g.check("newcomer") is None
    read(g, backlog(tx, pending=3, by_user={"greedy": 2, "other": 1}))  # `other`'s one ran
    assert g.check("other") is None


def test_disabled_bounds_refuse_nothing_and_counts_are_capped() -> None:
    clock, tx = Clock(), Transactions()
    g = gate(clock, pending=0, outbox=0)
    read(g, backlog(tx, pending=10**6, outbox=10**6))
    assert g.check("u") is None
    assert count_caps(Bounds(10, 5, 0)) == (20, 10)
    assert count_caps(Bounds(10, 5, 3)) == (None, 10)  # per user: a full count


def test_stream_slots_cap_per_key_and_per_replica_and_are_released_once() -> None:
    clock = Clock()
    slots = StreamSlots(per_key=2, per_replica=3, max_stream_s=30.0, clock=clock)
    a1 = slots.acquire("a")
    clock.now += 10.0
    slots.acquire("a")
    with pytest.raises(TooManyStreams) as refused:
        slots.acquire("a")
    assert refused.value.code == "too_many_streams"
    assert refused.value.retry_after_s == 20  # a1 reaches its time limit in 20 s
    b1 = slots.acquire("b")  # another key is unaffected
    with pytest.raises(TooManyStreams):
        slots.acquire("c")  # the replica is full
    with pytest.raises(TooManyStreams):
        slots.acquire(None)  # anonymous: capped per replica only
    a1.release()
    a1.release()  # idempotent: frees one slot, not two
    assert slots.open == 2
    assert slots.held_by("a") == 1
    slots.acquire("a")
    with pytest.raises(TooManyStreams):
        slots.acquire("c")
    b1.release()
    assert slots.acquire(None) is not None


def test_stream_caps_of_zero_are_disabled() -> None:
    slots = StreamSlots(per_key=0, per_replica=0, max_stream_s=30.0, clock=Clock())
    for _ in range(50):
        slots.acquire("a")
    assert slots.open == 50


def test_the_openapi_spec_names_each_429_code_where_it_can_happen() -> None:
    spec = create_app(ApiSettings(database_url="postgresql://nobody@127.0.0.1:9/x")).openapi()

    def codes(path: str, method: str) -> set[str]:
        response = spec["paths"][path][method]["responses"]["429"]
        assert "Retry-After" in response["headers"]
        return set(response["content"]["application/problem+json"]["examples"])

    creating = {"rate_limited", "overloaded", "too_many_pending", "quota_exceeded"}
    assert codes("/api/v1/generations", "post") == creating
    assert codes("/api/v1/generations/{generation_id}/retry", "post") == creating
    assert codes("/api/v1/jobs", "post") == creating
    streaming = {"rate_limited", "too_many_streams"}
    assert codes("/api/v1/events", "get") == streaming
    assert codes("/api/v1/generations/{generation_id}/events", "get") == streaming
    assert codes("/api/v1/generations", "get") == {"rate_limited"}
    assert codes("/api/v1/generations/{generation_id}/cancel", "post") == {"rate_limited"}
