from .helpers import BASE_URL, KEY1, KEY2, MakeSim, Sim


async def test_job_goes_queued_running_succeeded_with_time(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]

    queued = (await sim.job(job_id)).json()
    sim.clock.advance(5)
    running = (await sim.job(job_id)).json()
    sim.clock.advance(5)
    done = (await sim.job(job_id)).json()

    assert queued == {
        "id": job_id,
        "status": "queued",
        "progress": 0.0,
        "output": None,
        "error": None,
        "credits": 1,
    }
    assert running["status"] == "running"
    assert running["progress"] == 0.5
    assert running["output"] is None
    assert done["status"] == "succeeded"
    assert done["credits"] == 1  # what the job used of the key's credits (stats: credits_used)
    assert done["progress"] == 1.0
    assert done["error"] is None
    assert done["output"] == {
        "url": f"{BASE_URL}/v1/files/{job_id}",
        "media_type": "video/mp4",
        "width": 1280,
        "height": 720,
        "duration_s": 5.0,
    }


async def test_output_duration_follows_the_request(sim: Sim) -> None:
    job_id = (await sim.submit(duration=8)).json()["id"]
    sim.clock.advance(10)

    assert (await sim.job(job_id)).json()["output"]["duration_s"] == 8.0


async def test_zero_duration_succeeds_on_first_poll(make_sim: MakeSim) -> None:
    sim = make_sim(duration_s=0.0)
    job_id = (await sim.submit()).json()["id"]

    body = (await sim.job(job_id)).json()

    assert body["status"] == "succeeded"
    assert body["output"]["url"].endswith(job_id)


async def test_jitter_spreads_end_times_within_bounds(make_sim: MakeSim) -> None:
    sim = make_sim(duration_s=10.0, duration_jitter_s=5.0)
    ids = [(await sim.submit(reference=f"g{i}")).json()["id"] for i in range(20)]

    sim.clock.advance(9.99)
    before = {(await sim.job(i)).json()["status"] for i in ids}
    sim.clock.advance(2.51)
    middle = [(await sim.job(i)).json()["status"] for i in ids]
    sim.clock.advance(2.5)
    after = {(await sim.job(i)).json()["status"] for i in ids}

    assert before == {"running"}
    assert 0 < middle.count("succeeded") < len(ids)
    assert after == {"succeeded"}


async def test_output_file_is_small_deterministic_video(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]
    sim.clock.advance(10)
    url = (await sim.job(job_id)).json()["output"]["url"]

    first = await sim.client.get(url)
    second = await sim.client.get(url)

    assert first.status_code == 200
    assert first.headers["content-type"] == "video/mp4"
    assert 100 < len(first.content) < 2048
    assert first.content[4:8] == b"ftyp"
    assert first.content == second.content


async def test_file_of_unfinished_or_unknown_job_is_404(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]

    unfinished = await sim.client.get(f"/v1/files/{job_id}")
    unknown = await sim.client.get("/v1/files/nope")

    assert (unfinished.status_code, unknown.status_code) == (404, 404)
    assert unknown.json()["error"]["code"] == "not_found"


async def test_fail_marker_always_fails(sim: Sim) -> None:
    job_id = (await sim.submit("a cat [fail]")).json()["id"]
    sim.clock.advance(10)

    body = (await sim.job(job_id)).json()

    assert body["status"] == "failed"
    assert body["output"] is None
    assert body["error"]["code"] == "generation_failed"
    assert (await sim.client.get(f"/v1/files/{job_id}")).status_code == 404


async def test_fail_rate_fails_jobs(make_sim: MakeSim) -> None:
    sim = make_sim(fail_rate=1.0)
    job_id = (await sim.submit()).json()["id"]
    sim.clock.advance(10)

    assert (await sim.job(job_id)).json()["status"] == "failed"


async def test_jobs_are_visible_only_to_their_key(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]

    foreign = await sim.job(job_id, headers=KEY2)
    unknown = await sim.job("no-such-job")
    foreign_cancel = await sim.client.post(f"/v1/jobs/{job_id}/cancel", headers=KEY2)

    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"
    assert unknown.status_code == 404
    assert foreign_cancel.status_code == 404
    assert (await sim.job(job_id)).json()["status"] == "queued"


async def test_cancel_ends_an_unfinished_job(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]
    sim.clock.advance(5)

    cancel = await sim.client.post(f"/v1/jobs/{job_id}/cancel", headers=KEY1)
    sim.clock.advance(10)
    later = (await sim.job(job_id)).json()

    assert cancel.status_code == 202
    assert cancel.json()["status"] == "cancelled"
    assert later["status"] == "cancelled"
    assert later["progress"] == 0.5
    assert later["output"] is None
    assert (await sim.client.get(f"/v1/files/{job_id}")).status_code == 404
    stats = await sim.stats()
    assert stats["cancels"] == 1
    assert stats["cancelled_jobs"] == 1


async def test_cancel_of_a_finished_job_changes_nothing(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]
    sim.clock.advance(10)

    cancel = await sim.client.post(f"/v1/jobs/{job_id}/cancel", headers=KEY1)

    assert cancel.status_code == 202
    assert (await sim.job(job_id)).json()["status"] == "succeeded"
    stats = await sim.stats()
    assert stats["cancels"] == 1
    assert stats["cancelled_jobs"] == 0


async def test_unfinished_count_follows_time_without_polling(sim: Sim) -> None:
    first = (await sim.submit(reference="a")).json()["id"]
    await sim.submit(reference="b")
    sim.clock.advance(4)
    await sim.submit(reference="c")
    await sim.submit(reference="d", headers=KEY2)

    at_4 = await sim.stats()
    await sim.client.post(f"/v1/jobs/{first}/cancel", headers=KEY1)
    after_cancel = await sim.stats()
    sim.clock.advance(6)
    at_10 = await sim.stats()
    sim.clock.advance(4)
    at_14 = await sim.stats()

    assert at_4["keys"]["sim-key-1"]["unfinished"] == 3
    assert at_4["unfinished"] == 4
    assert after_cancel["keys"]["sim-key-1"]["unfinished"] == 2
    assert at_10["keys"]["sim-key-1"]["unfinished"] == 1
    assert at_14["unfinished"] == 0
    assert at_14["keys"]["sim-key-1"]["max_concurrent_seen"] == 3
    assert at_14["max_concurrent_seen"] == 3
    assert at_14["status_requests"] == 0


async def test_status_requests_are_counted(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]

    for _ in range(3):
        await sim.job(job_id)
    await sim.job("missing")

    assert (await sim.stats())["status_requests"] == 4


async def test_5xx_rate_also_hits_status_and_cancel(sim: Sim) -> None:
    job_id = (await sim.submit()).json()["id"]
    await sim.client.put("/_sim/config", json={"error_5xx_rate": 1.0})

    status = await sim.job(job_id)
    cancel = await sim.client.post(f"/v1/jobs/{job_id}/cancel", headers=KEY1)

    assert status.status_code in (500, 503)
    assert cancel.status_code in (500, 503)
    await sim.client.put("/_sim/config", json={"error_5xx_rate": 0.0})
    assert (await sim.job(job_id)).json()["status"] == "queued"
    assert (await sim.stats())["cancels"] == 0
