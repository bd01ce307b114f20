import pytest

from .helpers import Sim


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic sim-key-1"},
        {"Authorization": "Bearer "},
        {"API-KEY": "nope"},
    ],
)
async def test_missing_or_unknown_key_is_401(sim: Sim, headers: dict[str, str]) -> None:
    response = await sim.submit(headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert (await sim.stats())["submissions"] == 0


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer sim-key-2"}, {"authorization": "bearer sim-key-2"}]
)
async def test_bearer_key_is_accepted(sim: Sim, headers: dict[str, str]) -> None:
    response = await sim.submit(headers=headers)

    assert response.status_code == 201
    assert (await sim.stats())["keys"]["sim-key-2"]["submissions"] == 1


async def test_api_key_header_is_an_alternative(sim: Sim) -> None:
    created = await sim.submit(headers={"API-KEY": "sim-key-3"})
    assert created.status_code == 201

    status = await sim.job(created.json()["id"], headers={"Authorization": "Bearer sim-key-3"})

    assert status.status_code == 200
    assert (await sim.stats())["keys"]["sim-key-3"]["submissions"] == 1


async def test_status_and_cancel_need_a_key(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]

    status = await sim.client.get(f"/v1/jobs/{job_id}")
    cancel = await sim.client.post(f"/v1/jobs/{job_id}/cancel", headers={"API-KEY": "x"})

    assert (status.status_code, cancel.status_code) == (401, 401)
    assert (await sim.job(job_id)).json()["status"] == "queued"


async def test_known_keys_follow_the_config(sim: Sim) -> None:
    update = await sim.client.put("/_sim/config", json={"keys": ["fresh-key"]})
    assert update.status_code == 200

    old = await sim.submit(headers={"Authorization": "Bearer sim-key-1"})
    new = await sim.submit(headers={"Authorization": "Bearer fresh-key"})

    assert (old.status_code, new.status_code) == (401, 201)
