import time
from typing import Any

import pytest

from .helpers import KEY1, KEY2, MakeSim, Sim


async def test_submit_creates_a_queued_job(sim: Sim) -> None:
    response = await sim.submit(reference="gen-42", resolution="720p")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert isinstance(body["id"], str)
    assert body["id"]
    stats = await sim.stats()
    assert stats["submissions"] == 1
    assert stats["keys"]["sim-key-1"]["submissions"] == 1
    assert stats["keys"]["sim-key-1"]["credits_used"] == 1
    assert stats["keys"]["sim-key-2"]["submissions"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "a cat"},
        {"operation": "", "prompt": "a cat"},
        {"operation": 7, "prompt": "a cat"},
        {"operation": "text_to_video"},
        {"operation": "text_to_video", "prompt": 12},
        {"operation": "text_to_video", "prompt": "a cat", "client_reference": 5},
        ["operation", "prompt"],
    ],
)
async def test_invalid_body_is_400(sim: Sim, body: Any) -> None:
    response = await sim.client.post("/v1/jobs", json=body, headers=KEY1)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"]
    stats = await sim.stats()
    assert stats["submissions"] == 0
    assert stats["rejections"] == {"invalid_request": 1}


async def test_malformed_json_is_400(sim: Sim) -> None:
    response = await sim.client.post("/v1/jobs", content=b"{not json", headers=KEY1)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert (await sim.stats())["keys"]["sim-key-1"]["rejections"] == {"invalid_request": 1}


async def test_reject_marker_is_422_and_costs_nothing(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_credits={"sim-key-1": 1})

    rejected = await sim.submit("a cat [reject] please")
    accepted = await sim.submit("a cat")

    assert rejected.status_code == 422
    assert rejected.json()["error"]["code"] == "content_rejected"
    assert accepted.status_code == 201
    stats = await sim.stats()
    assert stats["submissions"] == 1
    assert stats["keys"]["sim-key-1"]["rejections"] == {"content_rejected": 1}


async def test_moderation_rate_rejects(make_sim: MakeSim) -> None:
    sim = make_sim(moderation_rate=1.0)

    response = await sim.submit("harmless")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "content_rejected"


async def test_rate_limit_is_429_with_retry_after(make_sim: MakeSim) -> None:
    sim = make_sim(rate_limit_rate=1.0, retry_after_s=7)

    response = await sim.submit()

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.headers["Retry-After"] == "7"
    assert (await sim.stats())["submissions"] == 0


async def test_5xx_rate_answers_500_and_503(make_sim: MakeSim) -> None:
    sim = make_sim(error_5xx_rate=1.0, retry_after_s=3)

    responses = [await sim.submit() for _ in range(20)]

    codes = {(r.status_code, r.json()["error"]["code"]) for r in responses}
    assert codes == {(500, "internal_error"), (503, "unavailable")}
    assert all(r.headers["Retry-After"] == "3" for r in responses if r.status_code == 503)
    assert (await sim.stats())["submissions"] == 0


async def test_latency_delays_responses(make_sim: MakeSim) -> None:
    sim = make_sim(latency_ms=150)

    started = time.perf_counter()
    response = await sim.submit()
    elapsed = time.perf_counter() - started

    assert response.status_code == 201
    assert elapsed >= 0.15


async def test_idempotent_replay_returns_the_original_job(sim: Sim) -> None:
    headers = {**KEY1, "Idempotency-Key": "gen-1:1"}
    body = {"operation": "text_to_video", "prompt": "a cat", "client_reference": "gen-1"}
    first = await sim.client.post("/v1/jobs", json=body, headers=headers)
    # Same JSON, other key order: still the same body.
    reordered = dict(reversed(list(body.items())))

    replay = await sim.client.post("/v1/jobs", json=reordered, headers=headers)

    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json() == first.json()
    stats = await sim.stats()
    assert stats["submissions"] == 1
    assert stats["idempotent_replays"] == 1
    assert stats["duplicate_references"] == 0
    assert stats["keys"]["sim-key-1"]["credits_used"] == 1


async def test_replay_reports_the_current_status(sim: Sim) -> None:
    headers = {**KEY1, "Idempotency-Key": "k"}
    body = {"operation": "text_to_video", "prompt": "a cat"}
    first = await sim.client.post("/v1/jobs", json=body, headers=headers)
    sim.clock.advance(10)

    replay = await sim.client.post("/v1/jobs", json=body, headers=headers)

    assert replay.json() == {"id": first.json()["id"], "status": "succeeded"}


async def test_idempotency_key_reused_with_another_body_is_409(sim: Sim) -> None:
    headers = {**KEY1, "Idempotency-Key": "gen-1:1"}
    await sim.client.post(
        "/v1/jobs", json={"operation": "text_to_video", "prompt": "a cat"}, headers=headers
    )

    conflict = await sim.client.post(
        "/v1/jobs", json={"operation": "text_to_video", "prompt": "a dog"}, headers=headers
    )

    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    stats = await sim.stats()
    assert stats["submissions"] == 1
    assert stats["idempotent_replays"] == 0


async def test_idempotency_keys_are_scoped_per_api_key(sim: Sim) -> None:
    body = {"operation": "text_to_video", "prompt": "a cat"}
    one = await sim.client.post("/v1/jobs", json=body, headers={**KEY1, "Idempotency-Key": "k"})
    two = await sim.client.post("/v1/jobs", json=body, headers={**KEY2, "Idempotency-Key": "k"})

    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["id"] != two.json()["id"]
    assert (await sim.stats())["submissions"] == 2


async def test_duplicate_references_count_extra_jobs(sim: Sim) -> None:
    for headers in (KEY1, KEY1, KEY2):
        assert (await sim.submit(reference="gen-a", headers=headers)).status_code == 201
    assert (await sim.submit(reference="gen-b")).status_code == 201
    assert (await sim.submit(reference=None)).status_code == 201
    assert (await sim.submit(reference=None)).status_code == 201

    stats = await sim.stats()

    assert stats["submissions"] == 6
    assert stats["duplicate_references"] == 2
    assert stats["duplicated_references"] == ["gen-a"]


async def test_concurrency_cap_is_429_until_a_slot_frees(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_concurrency=2)
    first = await sim.submit(reference="a")
    await sim.submit(reference="b")

    refused = await sim.submit(reference="c")
    other_key = await sim.submit(reference="d", headers=KEY2)
    await sim.client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=KEY1)
    after_cancel = await sim.submit(reference="c")
    refused_again = await sim.submit(reference="e")
    sim.clock.advance(10)  # every job of key 1 has ended, nobody polled
    after_end = await sim.submit(reference="e")

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "concurrency_limit"
    assert other_key.status_code == 201
    assert after_cancel.status_code == 201
    assert refused_again.status_code == 429
    assert after_end.status_code == 201
    key1 = (await sim.stats())["keys"]["sim-key-1"]
    assert key1["max_concurrent_seen"] == 2
    assert key1["concurrency_violations"] == 0
    assert key1["rejections"] == {"concurrency_limit": 2}


async def test_non_enforcing_mode_counts_violations(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_concurrency=2, enforce_concurrency=False)
    responses = [await sim.submit(reference=f"g{i}") for i in range(4)]
    sim.clock.advance(10)
    responses += [await sim.submit(reference=f"h{i}") for i in range(2)]

    stats = await sim.stats()

    assert [r.status_code for r in responses] == [201] * 6
    assert stats["concurrency_violations"] == 2
    assert stats["keys"]["sim-key-1"]["concurrency_violations"] == 2
    assert stats["keys"]["sim-key-1"]["max_concurrent_seen"] == 4
    assert stats["keys"]["sim-key-1"]["unfinished"] == 2


async def test_credits_run_out_with_402(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_credits={"sim-key-1": 2}, default_credits=1)

    key1 = [(await sim.submit(reference=f"g{i}")).status_code for i in range(3)]
    key2 = [(await sim.submit(reference=f"h{i}", headers=KEY2)).status_code for i in range(2)]
    refused = await sim.submit(reference="x")

    assert key1 == [201, 201, 402]
    assert key2 == [201, 402]
    assert refused.json()["error"]["code"] == "quota_exhausted"
    stats = await sim.stats()
    assert stats["keys"]["sim-key-1"]["credits_left"] == 0
    assert stats["keys"]["sim-key-1"]["credits_used"] == 2
    assert stats["keys"]["sim-key-3"]["credits_left"] == 1
    assert stats["rejections"] == {"quota_exhausted": 3}


async def test_credits_are_unlimited_by_default(sim: Sim) -> None:
    codes = {(await sim.submit(reference=f"g{i}")).status_code for i in range(30)}

    assert codes == {201}
    assert (await sim.stats())["keys"]["sim-key-1"]["credits_left"] is None


async def test_status_calls_of_a_hung_key_wait_and_other_keys_do_not(make_sim: MakeSim) -> None:
    sim = make_sim(status_hang_keys=["sim-key-1"], status_hang_ms=300)
    mine = (await sim.submit()).json()["id"]
    theirs = (
        await sim.client.post("/v1/jobs", json={"operation": "t2v", "prompt": "p"}, headers=KEY2)
    ).json()["id"]

    started = time.perf_counter()
    assert (await sim.client.get(f"/v1/jobs/{theirs}", headers=KEY2)).status_code == 200
    assert time.perf_counter() - started < 0.3
    started = time.perf_counter()
    assert (await sim.client.get(f"/v1/jobs/{mine}", headers=KEY1)).status_code == 200
    assert time.perf_counter() - started >= 0.3
