from genbus.provider_sim.slots import UnfinishedJobs


def test_jobs_count_until_their_end_time() -> None:
    jobs = UnfinishedJobs()
    jobs.add("a", end_at=10.0)
    jobs.add("b", end_at=20.0)
    jobs.add("c", end_at=15.0)

    assert jobs.count(5.0) == 3
    assert jobs.count(10.0) == 2  # a job ends exactly at its end time
    assert jobs.count(15.0) == 1
    assert jobs.count(20.0) == 0


def test_cancelled_jobs_stop_counting_at_once_and_are_pruned_later() -> None:
    jobs = UnfinishedJobs()
    jobs.add("a", end_at=10.0)
    jobs.add("b", end_at=20.0)

    jobs.cancel("b")

    assert jobs.count(1.0) == 1
    assert jobs.count(10.0) == 0
    assert jobs.count(25.0) == 0
    jobs.add("c", end_at=30.0)
    assert jobs.count(25.0) == 1
