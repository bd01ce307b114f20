"""The sim's balance, in its own API and in Pixverse's shape: the key's credits left, the same
figure `/_sim/stats` shows, falling by each created job's credits."""

from __future__ import annotations

from uuid import uuid4

from .helpers import KEY1, MakeSim

PIXVERSE = {"API-KEY": "sim-key-1"}


async def test_the_balance_is_the_keys_credits_left(make_sim: MakeSim) -> None:
    sim = make_sim(per_key_credits={"sim-key-1": 3})
    assert (await sim.client.get("/v1/balance", headers=KEY1)).json() == {"credits_left": 3}
    job = (await sim.submit()).json()
    sim.clock.advance(20)
    assert (await sim.job(job["id"])).json()["credits"] == 1
    assert (await sim.client.get("/v1/balance", headers=KEY1)).json() == {"credits_left": 2}
    pixverse = await sim.client.get(
        "/openapi/v2/account/balance", headers={**PIXVERSE, "Ai-trace-id": str(uuid4())}
    )
    assert pixverse.json()["Resp"]["credit_monthly"] == 2
    assert (await sim.stats())["keys"]["sim-key-1"]["credits_left"] == 2


async def test_an_unlimited_key_has_no_balance_and_a_stranger_none_at_all(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    assert (await sim.client.get("/v1/balance", headers=KEY1)).json() == {"credits_left": None}
    refused = await sim.client.get("/v1/balance", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
