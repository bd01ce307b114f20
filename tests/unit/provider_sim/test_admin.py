import pytest

from genbus.provider_sim.config import ServerSettings, SimConfig

from .helpers import KEY1, MakeSim, Sim


async def test_get_config_returns_every_knob(sim: Sim) -> None:
    response = await sim.client.get("/_sim/config")

    assert response.status_code == 200
    assert response.json() == sim.state.config.model_dump(mode="json")
    assert response.json()["duration_s"] == 10.0
    assert response.json()["per_key_concurrency"] is None


async def test_put_config_updates_only_given_fields(sim: Sim) -> None:
    response = await sim.client.put(
        "/_sim/config",
        json={"fail_rate": 0.25, "per_key_concurrency": 3, "per_key_credits": {"sim-key-1": 9}},
    )

    assert response.status_code == 200
    config = response.json()
    assert config["fail_rate"] == 0.25
    assert config["per_key_concurrency"] == 3
    assert config["per_key_credits"] == {"sim-key-1": 9}
    assert config["duration_s"] == 10.0
    assert (await sim.client.get("/_sim/config")).json() == config


async def test_put_config_with_a_comma_separated_key_list(sim: Sim) -> None:
    response = await sim.client.put("/_sim/config", json={"keys": "k1, k2"})

    assert response.json()["keys"] == ["k1", "k2"]


@pytest.mark.parametrize(
    "patch",
    [
        {"fail_rate": 2},
        {"duration_s": -1},
        {"per_key_concurrency": 0},
        {"no_such_knob": 1},
        [1],
        {"submit_latency_ms": -1},
        {"accepted_response_delay_ms": -0.5},
        {"lost_response_rate": 1.5},
    ],
)
async def test_put_invalid_config_is_400_and_changes_nothing(sim: Sim, patch: object) -> None:
    before = (await sim.client.get("/_sim/config")).json()

    response = await sim.client.put("/_sim/config", json=patch)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert (await sim.client.get("/_sim/config")).json() == before


async def test_config_changes_apply_to_the_next_submission(sim: Sim) -> None:
    await sim.client.put("/_sim/config", json={"duration_s": 0})

    job_id = (await sim.submit()).json()["id"]

    assert (await sim.job(job_id)).json()["status"] == "succeeded"


async def _outcomes(sim: Sim) -> list[str]:
    ids = [(await sim.submit(reference=f"g{i}")).json()["id"] for i in range(30)]
    sim.clock.advance(12.5)
    return [(await sim.job(job_id)).json()["status"] for job_id in ids]


async def test_same_seed_same_draws(make_sim: MakeSim) -> None:
    knobs = {"duration_jitter_s": 5.0, "fail_rate": 0.5, "seed": 7}
    first = await _outcomes(make_sim(**knobs))
    second = await _outcomes(make_sim(**knobs))
    other = await _outcomes(make_sim(**{**knobs, "seed": 8}))

    assert first == second
    assert first != other
    assert {"running", "succeeded", "failed"} <= set(first)


async def test_setting_the_seed_or_resetting_repeats_the_draws(make_sim: MakeSim) -> None:
    sim = make_sim(duration_jitter_s=5.0, fail_rate=0.5, seed=7)
    first = await _outcomes(sim)
    drifted = await _outcomes(sim)

    await sim.client.put("/_sim/config", json={"seed": 7})
    after_reseed = await _outcomes(sim)
    await sim.client.post("/_sim/reset")
    after_reset = await _outcomes(sim)

    assert drifted != first
    assert after_reseed == first
    assert after_reset == first


async def test_reset_clears_jobs_and_counters_but_keeps_config(sim: Sim) -> None:
    await sim.client.put("/_sim/config", json={"per_key_concurrency": 1})
    job_id = (await sim.submit()).json()["id"]
    await sim.submit()  # refused: concurrency_limit
    await sim.job(job_id)

    response = await sim.client.post("/_sim/reset")

    assert response.status_code == 200
    assert (await sim.job(job_id)).status_code == 404
    stats = await sim.stats()
    assert stats["submissions"] == 0
    assert stats["rejections"] == {}
    assert stats["status_requests"] == 1  # the 404 poll just above
    assert stats["keys"]["sim-key-1"]["unfinished"] == 0
    assert stats["keys"]["sim-key-1"]["max_concurrent_seen"] == 0
    assert (await sim.client.get("/_sim/config")).json()["per_key_concurrency"] == 1
    assert (await sim.submit()).status_code == 201  # the slot is free again


async def test_fresh_stats_report_the_fault_counters_at_zero(sim: Sim) -> None:
    stats = await sim.stats()

    fields = ("submits_in_progress", "lost_responses", "delayed_responses", "lookups")
    assert {name: stats[name] for name in fields} == dict.fromkeys(fields, 0)


async def test_sim_endpoints_need_no_auth(sim: Sim) -> None:
    responses = [
        await sim.client.get("/_sim/config"),
        await sim.client.get("/_sim/stats"),
        await sim.client.post("/_sim/reset"),
    ]

    assert [r.status_code for r in responses] == [200, 200, 200]


async def test_unknown_route_uses_the_error_shape(sim: Sim) -> None:
    missing = await sim.client.get("/v2/nothing", headers=KEY1)
    wrong_method = await sim.client.delete("/v1/jobs", headers=KEY1)

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_KEYS", "alpha, beta")
    monkeypatch.setenv("SIM_SEED", "42")
    monkeypatch.setenv("SIM_DURATION_S", "0")
    monkeypatch.setenv("SIM_FAIL_RATE", "0.3")
    monkeypatch.setenv("SIM_PER_KEY_CONCURRENCY", "4")
    monkeypatch.setenv("SIM_ENFORCE_CONCURRENCY", "false")
    monkeypatch.setenv("SIM_PER_KEY_CREDITS", '{"alpha": 10}')
    monkeypatch.setenv("SIM_DEFAULT_CREDITS", "2")
    monkeypatch.setenv("SIM_SUBMIT_LATENCY_MS", "1500")
    monkeypatch.setenv("SIM_ACCEPTED_RESPONSE_DELAY_MS", "2000")
    monkeypatch.setenv("SIM_LOST_RESPONSE_RATE", "0.25")
    monkeypatch.setenv("SIM_HOST", "0.0.0.0")
    monkeypatch.setenv("SIM_PORT", "9200")

    config = SimConfig()
    server = ServerSettings()

    assert config.keys == ["alpha", "beta"]
    assert config.seed == 42
    assert config.duration_s == 0.0
    assert config.fail_rate == 0.3
    assert config.per_key_concurrency == 4
    assert config.enforce_concurrency is False
    assert config.credits_for("alpha") == 10
    assert config.credits_for("beta") == 2
    assert (config.submit_latency_ms, config.accepted_response_delay_ms) == (1500.0, 2000.0)
    assert config.lost_response_rate == 0.25
    assert (server.host, server.port, server.access_log) == ("0.0.0.0", 9200, False)


def test_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SIM_KEYS",
        "SIM_PER_KEY_CONCURRENCY",
        "SIM_ENFORCE_CONCURRENCY",
        "SIM_PORT",
        "SIM_LATENCY_MS",
        "SIM_SUBMIT_LATENCY_MS",
        "SIM_ACCEPTED_RESPONSE_DELAY_MS",
        "SIM_LOST_RESPONSE_RATE",
    ):
        monkeypatch.delenv(name, raising=False)

    config = SimConfig()

    assert config.keys == ["sim-key-1", "sim-key-2", "sim-key-3", "sim-key-4"]
    assert config.per_key_concurrency is None
    assert config.enforce_concurrency is True
    assert config.credits_for("sim-key-1") is None
    assert (config.latency_ms, config.submit_latency_ms, config.accepted_response_delay_ms) == (
        0.0,
        0.0,
        0.0,
    )
    assert config.lost_response_rate == 0.0
    assert ServerSettings().port == 9100
