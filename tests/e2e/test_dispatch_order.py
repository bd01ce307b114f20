"""Priority (0 to 10, higher first) and scheduled_at decide dispatch order, as documented; and
fair share between users within a priority.

Fair share: 8 sim slots (the default accounts sim-1 and sim-2, 4 each), jobs of 2 s: user A
(the local anonymous user) queues 300, then user B (an API key's user) posts 5. The whole
backlog would take 75 s; A's rest is cancelled once what is measured is done. B's first starts
within a slot turnover; a waiting generation's queue position only goes down, to 0, and its
estimated start is compared with when it really started. (Last in this module: what it leaves
running ends within a job's 2 s.)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from genbus.devstack.system import GenbusSystem
from tests.e2e.conftest import admin_client, api_cli, post_generation, wait_for, wait_terminal
from tests.figures import report

pytestmark = pytest.mark.e2e


def _post(api: httpx.Client, prompt: str, **fields: Any) -> str:
    gid: str = post_generation(api, prompt, **fields)["id"]
    return gid


def _read(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    """GET `path` (200), after the wait a 429 asks for when a key polls faster than its rate
    limit (as a client would)."""
    response = client.get(path, params=params)
    if response.status_code == 429:
        time.sleep(float(response.headers["Retry-After"]))
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _get(api: httpx.Client, gid: str) -> dict[str, Any]:
    return _read(api, f"/api/v1/generations/{gid}")


@pytest.fixture
def one_sim_slot(system: GenbusSystem) -> Iterator[None]:
    """Only one sim slot in the whole system, so submission order is dispatch order."""
    with admin_client(system) as admin:
        admin.patch("/admin/accounts/sim-1", json={"max_concurrent": 1}).raise_for_status()
        admin.post(
            "/admin/accounts/sim-2/disable", json={"reason": "order test"}
        ).raise_for_status()
        try:
            yield
        finally:
            admin.post("/admin/accounts/sim-2/enable").raise_for_status()
            admin.patch("/admin/accounts/sim-1", json={"max_concurrent": 4}).raise_for_status()


def test_higher_priority_first_and_not_before_scheduled_at(
    api: httpx.Client, sim: httpx.Client, one_sim_slot: None
) -> None:
    sim.put("/_sim/config", json={"duration_s": 1.0, "duration_jitter_s": 0.0}).raise_for_status()
    blocker = _post(api, "holds the only slot")
    wait_for(lambda: _get(api, blocker)["status"], lambda status: status == "processing")
    sim.put("/_sim/config", json={"duration_s": 0.1}).raise_for_status()

    low = [_post(api, f"low {i}", priority=1) for i in range(3)]
    high = [_post(api, f"high {i}", priority=9) for i in range(3)]
    # Due well after the six others can finish one by one behind the blocker (~1 s + 6 x ~0.3 s
    # on this machine; 3 s was not enough on a loaded CI run, and `later` then rightly jumped
    # ahead of the last low-priority job).
    later = _post(
        api,
        "scheduled",
        priority=10,
        scheduled_at=(datetime.now(UTC) + timedelta(seconds=8)).isoformat(),
    )
    assert _get(api, later)["wait_reason"] == "scheduled"

    ends = {g: wait_terminal(api, f"/api/v1/generations/{g}") for g in [*low, *high, later]}
    assert all(body["status"] == "completed" for body in ends.values())
    # One slot: each job is dispatched only after the previous one completed, so completion
    # order is dispatch order. (submitted_at can be empty: a completed event may reach the API
    # before the submitted one, and a terminal generation no longer changes.)
    order = sorted(ends, key=lambda g: ends[g]["completed_at"])
    assert order[:3] == high  # higher priority first, then arrival order
    assert order[3:6] == low
    assert order[6] == later  # highest priority, yet not before its scheduled time
    assert ends[later]["completed_at"] >= ends[later]["scheduled_at"]


JOB_S = 2.0
SLOTS = 8
#: One turnover: a job's 2 s, plus the poller noticing its end (it polls a 2 s-old job every
#: ~0.2 s), the completed event reaching the dispatcher, a claim and a submission (each well
#: under 0.5 s here, but this 2-core machine runs the whole stack and other tests).
TURNOVER_BOUND_S = JOB_S + 1.5


def _key_for(system: GenbusSystem, user: str, *limits: str) -> str:
    """A new API key of `user`, with `limits` (`name=value`) overriding its tier's."""
    created = api_cli(system, "keys", "create", "--user", user, "--name", user)
    if limits:
        overrides = [arg for limit in limits for arg in ("--set", limit)]
        api_cli(system, "keys", "limits", created["id"], *overrides)
    key: str = created["key"]
    return key


@pytest.fixture
def bob(system: GenbusSystem) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=system.api_url, headers=_bearer(_key_for(system, "bob")), timeout=10.0
    ) as client:
        yield client


@pytest.fixture
def two_second_jobs(sim: httpx.Client) -> Iterator[None]:
    sim.put("/_sim/config", json={"duration_s": JOB_S, "duration_jitter_s": 0.0}).raise_for_status()
    yield
    sim.put("/_sim/config", json={"duration_s": 0.2}).raise_for_status()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _first_pending(client: httpx.Client, ids: list[str]) -> int:
    """The index of the first generation still pending (they start in order: a bisection)."""
    low, high = 0, len(ids)
    while low < high:
        mid = (low + high) // 2
        if client.get(f"/api/v1/generations/{ids[mid]}").json()["status"] == "pending":
            high = mid
        else:
            low = mid + 1
    return low


class Watch:
    """Reads of some generations every 0.1 s: when each left `pending`, and what one of them
    showed of its queue position and estimated start while it waited. `read` returns the
    bodies of (at least) the generations still watched, by id, in as few requests as the
    caller's rate limit allows."""

    def __init__(
        self, read: Callable[[list[str]], dict[str, dict[str, Any]]], ids: list[str], tracked: str
    ) -> None:
        self.read, self.ids, self.tracked = read, ids, tracked
        self.started: dict[str, datetime] = {}
        self.positions: list[int] = []
        self.estimates: list[datetime] = []

    def poll(self) -> bool:
        waiting = [gid for gid in self.ids if gid not in self.started]
        bodies = self.read(waiting) if waiting else {}
        for gid in waiting:
            body = bodies[gid]
            if body["status"] != "pending":
                self.started[gid] = _at(body["submitted_at"] or body["updated_at"])
            elif gid == self.tracked:
                self.positions.append(body["queue_position"])
                if body["estimated_start_at"] is not None:
                    self.estimates.append(_at(body["estimated_start_at"]))
        return len(self.started) == len(self.ids)


def _each(client: httpx.Client) -> Callable[[list[str]], dict[str, dict[str, Any]]]:
    """A GET per generation (for the anonymous local user, who has no rate limit)."""
    return lambda ids: {gid: _get(client, gid) for gid in ids}


def _listed(client: httpx.Client, tracked: str) -> Callable[[list[str]], dict[str, dict[str, Any]]]:
    """For a rate-limited key (20 requests/s): the caller's generations in one list request,
    and `tracked` by its own GET while it waits (only that shows its queue position)."""

    def read(ids: list[str]) -> dict[str, dict[str, Any]]:
        bodies = _mine(client) if ids != [tracked] else {}
        if tracked in ids:
            bodies[tracked] = _get(client, tracked)
        return bodies

    return read


def _mine(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """The caller's generations by id, in one request (a GET per generation would pass the
    key's rate limit at this polling rate)."""
    return {g["id"]: g for g in _read(client, "/api/v1/generations", limit=50)["items"]}


def _statuses(client: httpx.Client, ids: list[str]) -> list[str]:
    mine = _mine(client)
    return [mine[g]["status"] for g in ids]


def test_a_capped_users_jobs_wait_without_blocking_anyone_else(
    system: GenbusSystem, two_second_jobs: None
) -> None:
    """Carol's key allows 1 generation in flight: her queued ones wait (told why) while Dave's,
    posted after them, run on the slots her cap leaves free."""
    carol_key = _key_for(system, "carol", "max_in_flight=1")
    dave_key = _key_for(system, "dave")
    with (
        httpx.Client(base_url=system.api_url, headers=_bearer(carol_key), timeout=10.0) as carol,
        httpx.Client(base_url=system.api_url, headers=_bearer(dave_key), timeout=10.0) as dave,
    ):
        first = post_generation(carol, "carol 0")["id"]
        wait_for(lambda: _statuses(carol, [first]), lambda s: s[0] != "pending")
        queued = [post_generation(carol, f"carol {i}")["id"] for i in range(1, 6)]
        daves = [post_generation(dave, f"dave {i}")["id"] for i in range(3)]
        carols = [first, *queued]
        most_in_flight = 0
        deadline = time.monotonic() + 30
        while True:
            in_flight = sum(s in ("submitted", "processing") for s in _statuses(carol, carols))
            most_in_flight = max(most_in_flight, in_flight)
            dave_statuses = _statuses(dave, daves)
            if all(s == "completed" for s in dave_statuses):
                break
            assert time.monotonic() < deadline, f"Dave's never completed: {dave_statuses}"
            time.sleep(0.2)
        carol_now = _statuses(carol, carols)
        carol_mine = _mine(carol)
        reasons = {carol_mine[g]["wait_reason"] for g in queued}
        for gid in queued:
            carol.post(f"/api/v1/generations/{gid}/cancel")
    waiting = sum(s == "pending" for s in carol_now)
    report(
        f"per-user cap: Carol (max_in_flight 1) had at most {most_in_flight} in flight; Dave's 3, "
        f"posted behind her 5 queued, all completed while {waiting} of hers still waited "
        f"(her waiting ones said {sorted(r for r in reasons if r)})"
    )
    assert most_in_flight == 1
    assert waiting >= 3  # Dave's ran on the other 7 slots, not after Carol's queue drained
    assert "user_at_capacity" in reasons


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_another_users_first_generation_starts_within_a_slot_turnover(
    system: GenbusSystem, api: httpx.Client, bob: httpx.Client, two_second_jobs: None
) -> None:
    alice = [post_generation(api, f"alice {i}")["id"] for i in range(300)]
    # Every slot busy with Alice's jobs before Bob arrives.
    wait_for(
        lambda: [api.get(f"/api/v1/generations/{g}").json()["status"] for g in alice[:SLOTS]],
        lambda statuses: all(s != "pending" for s in statuses),
    )
    posted = [post_generation(bob, f"bob {i}") for i in range(5)]
    bobs = [p["id"] for p in posted]
    # One of Alice's 30 behind her first still waiting (and behind Bob's 5): ~9 s from now.
    tracked = alice[_first_pending(api, alice) + 30]
    alice_watch = Watch(_each(api), [tracked], tracked)
    bob_watch = Watch(_listed(bob, bobs[-1]), bobs, bobs[-1])
    deadline = time.monotonic() + 60
    while not (bob_watch.poll() & alice_watch.poll()):
        assert time.monotonic() < deadline, "Bob's or Alice's tracked generation never started"
        time.sleep(0.1)
    bob_done = wait_for(
        lambda: [_mine(bob)[g] for g in bobs],
        lambda bodies: all(b["status"] == "completed" for b in bodies),
    )
    alice_waiting = sum(
        api.get(f"/api/v1/generations/{g}").json()["status"] == "pending" for g in alice
    )
    for gid in alice:  # what is measured is done: the rest of the backlog is not needed
        api.post(f"/api/v1/generations/{gid}/cancel")

    first_wait = (min(bob_watch.started.values()) - _at(posted[0]["created_at"])).total_seconds()
    last_done = max(_at(b["completed_at"]) for b in bob_done)
    all_done_s = (last_done - _at(posted[0]["created_at"])).total_seconds()
    report(
        f"fair share: Bob's first of 5 started {first_wait:.2f} s after he posted behind "
        f"Alice's 300 on {SLOTS} slots of {JOB_S:.0f} s jobs (bound {TURNOVER_BOUND_S} s); all "
        f"5 done in {all_done_s:.1f} s, with {alice_waiting} of Alice's still waiting "
        f"(her backlog alone: {300 * JOB_S / SLOTS:.0f} s)"
    )
    assert first_wait <= TURNOVER_BOUND_S
    # Fair share gives Bob every other freed slot at least: his 5 are done within a few
    # turnovers, while most of Alice's backlog still waits.
    assert all_done_s <= 4 * TURNOVER_BOUND_S
    assert alice_waiting >= 200

    # Bob's last waited behind his own four, and behind Alice's only while she had fewer in
    # flight than he did (a snapshot of fair share near the head may tick up when one of her
    # jobs ends before his next one starts): it reached 0.
    assert bob_watch.positions, "Bob's last generation was never seen pending"
    assert bob_watch.positions[0] <= 4
    assert min(bob_watch.positions) == 0
    # Alice's tracked one: its position went down monotonically to 0 ...
    positions = alice_watch.positions
    assert positions[0] >= 25
    assert positions == sorted(positions, reverse=True)
    # Its last sample is at most a few from 0: about 4 start per second, the samples are
    # ~0.1 s apart (more on a loaded machine), and a claim the provider has not yet taken still
    # counts as pending.
    assert positions[-1] <= 3
    # ... and its estimated start, measured against when it did start.
    started = alice_watch.started[tracked]
    errors = [abs((e - started).total_seconds()) for e in alice_watch.estimates]
    assert errors, "no estimated start while it waited (no turnover seen?)"
    waited_s = (started - _at(posted[0]["created_at"])).total_seconds()
    report(
        f"queue position of a waiting generation: {positions[0]} -> {positions[-1]} over "
        f"{len(positions)} samples (monotonic); estimated start error: mean "
        f"{statistics.mean(errors):.2f} s, max {max(errors):.2f} s, last {errors[-1]:.2f} s "
        f"(it started {waited_s:.1f} s after Bob posted); Bob's last: {bob_watch.positions}"
    )
    # Slots full from the start, so the turnover is known from the first sample on (in flight
    # over time per job): the estimates are off by well under half the wait on average.
    assert statistics.mean(errors) <= waited_s / 2
