"""poll_submitted: every job ends by its deadline, and an unusable account ends it at once.

Each path is checked through what it publishes: the completed event is what releases the
provider slot, so "nothing published and no redelivery bound" is the bug these tests catch.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from structlog.testing import LogCapture

from genbus.contracts import (
    ACCOUNT_CREDENTIALS_UNREADABLE,
    ACCOUNT_ENTRY_INVALID,
    ACCOUNT_UNKNOWN,
    DEADLINE_EXCEEDED,
    UNSUPPORTED_PROVIDER,
    Asset,
    CompletionStatus,
    ErrorInfo,
    GenerationCompleted,
    derive_event_id,
)
from genbus.poller.adapters.account_directory import (
    AccountCredentialsUnreadable,
    AccountEntryInvalid,
    AccountUnknown,
)
from genbus.poller.service_layer import ending
from genbus.poller.service_layer.polling import poll_submitted
from genbus.providers import ContentRejected, JobState, JobStatus, ProviderUnavailable
from genbus.runtime.consumer import RedeliverLater
from tests.unit.poller.fakes import ACCOUNT, FakeAdapter, FakeDirectory, make_deps, submitted

pytestmark = pytest.mark.service_layer

ASSET = Asset(url="https://cdn.test/out.mp4", media_type="video/mp4")


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> list[MutableMapping[str, Any]]:
    capture = LogCapture()
    logger = structlog.wrap_logger(
        None, processors=[capture], wrapper_class=structlog.stdlib.BoundLogger
    )
    monkeypatch.setattr(ending, "log", logger)
    return capture.entries


def _failures(code: str) -> float:
    return (
        REGISTRY.get_sample_value("genbus_poller_failures_total", {"provider": "sim", "code": code})
        or 0.0
    )


def _only(published: list[GenerationCompleted]) -> GenerationCompleted:
    assert len(published) == 1, published
    return published[0]


def _assert_failed_with(published: list[GenerationCompleted], failure: ErrorInfo) -> None:
    completed = _only(published)
    assert completed.status is CompletionStatus.FAILED
    assert completed.error == failure


# -- the deadline comes first


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("kv unreachable"),
        TimeoutError(),
        AccountUnknown("acc-1", "not in the account directory"),
        AccountEntryInvalid("acc-1", "invalid entry"),
        AccountCredentialsUnreadable("acc-1", "no key reads it"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_past_the_deadline_any_directory_error_still_ends_the_job(error: Exception) -> None:
    adapter = FakeAdapter()
    deps, publisher = make_deps(directory=FakeDirectory(error=error), adapter=adapter)
    before = _failures("deadline_exceeded")

    await poll_submitted(deps, submitted(deadline_in_s=-1.0))

    _assert_failed_with(publisher.completed, DEADLINE_EXCEEDED)
    assert adapter.cancelled == []  # no account, no cancel
    assert adapter.polled == []
    assert _failures("deadline_exceeded") == before + 1


async def test_past_the_deadline_with_a_readable_account_cancels_then_fails() -> None:
    adapter = FakeAdapter()
    deps, publisher = make_deps(adapter=adapter)
    event = submitted(deadline_in_s=-1.0)

    await poll_submitted(deps, event)

    assert [ref.provider_job_id for ref in adapter.cancelled] == [event.provider_job_id]
    assert adapter.cancelled[0].credentials == ACCOUNT.credentials
    assert adapter.polled == []
    completed = _only(publisher.completed)
    assert completed.error == DEADLINE_EXCEEDED
    assert completed.event_id == derive_event_id(event.generation_id, "generation.completed", 1)
    assert (completed.account_id, completed.provider_job_id) == ("acc-1", "job-1")


@pytest.mark.parametrize(
    "error", [ProviderUnavailable("503"), RuntimeError("boom")], ids=["provider", "unexpected"]
)
async def test_past_the_deadline_a_failed_cancel_still_publishes(
    error: Exception, logs: list[MutableMapping[str, Any]]
) -> None:
    adapter = FakeAdapter(cancel_error=error)
    deps, publisher = make_deps(adapter=adapter)

    await poll_submitted(deps, submitted(deadline_in_s=-1.0))

    assert len(adapter.cancelled) == 1
    _assert_failed_with(publisher.completed, DEADLINE_EXCEEDED)
    assert [line["code"] for line in logs] == ["deadline_exceeded"]
    assert "cancel failed" in logs[0]["reason"]


async def test_past_the_deadline_a_hanging_cancel_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ending, "CANCEL_BUDGET_S", 0.01)
    adapter = FakeAdapter(cancel_hangs=True)
    deps, publisher = make_deps(adapter=adapter)

    await poll_submitted(deps, submitted(deadline_in_s=-1.0))

    assert len(adapter.cancelled) == 1
    _assert_failed_with(publisher.completed, DEADLINE_EXCEEDED)


async def test_past_the_deadline_an_unsupported_provider_fails_on_the_deadline() -> None:
    directory = FakeDirectory()
    deps, publisher = make_deps(directory=directory)

    await poll_submitted(deps, submitted(deadline_in_s=-1.0, provider_id="nowhere"))

    _assert_failed_with(publisher.completed, DEADLINE_EXCEEDED)


# -- an account the poller cannot use


async def test_unreadable_credentials_fail_at_once_logged_and_counted_once(
    logs: list[MutableMapping[str, Any]],
) -> None:
    error = AccountCredentialsUnreadable("acc-1", "credentials token is invalid for every key")
    adapter = FakeAdapter()
    deps, publisher = make_deps(directory=FakeDirectory(error=error), adapter=adapter)
    before = _failures("account_credentials_unreadable")

    await poll_submitted(deps, submitted())

    _assert_failed_with(publisher.completed, ACCOUNT_CREDENTIALS_UNREADABLE)
    assert adapter.polled == []
    assert _failures("account_credentials_unreadable") == before + 1
    assert len(logs) == 1
    assert logs[0]["code"] == "account_credentials_unreadable"
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["account_id"] == "acc-1"
    assert logs[0]["reason"] == "credentials token is invalid for every key"


async def test_an_invalid_entry_fails_at_once() -> None:
    error = AccountEntryInvalid("acc-1", "invalid entry (credentials_ciphertext: Field required)")
    deps, publisher = make_deps(directory=FakeDirectory(error=error))
    before = _failures("account_entry_invalid")

    await poll_submitted(deps, submitted())

    _assert_failed_with(publisher.completed, ACCOUNT_ENTRY_INVALID)
    assert _failures("account_entry_invalid") == before + 1


async def test_an_unknown_account_is_waited_for_within_the_grace_period() -> None:
    deps, publisher = make_deps(
        directory=FakeDirectory(error=AccountUnknown("acc-1", "not there")), grace_s=60.0
    )

    with pytest.raises(RedeliverLater) as raised:
        await poll_submitted(deps, submitted(age_s=5.0))

    assert 0.0 < raised.value.delay_s <= 1.0
    assert publisher.completed == []


async def test_the_wait_for_an_unknown_account_does_not_overshoot_the_grace_period() -> None:
    deps, _ = make_deps(
        directory=FakeDirectory(error=AccountUnknown("acc-1", "not there")), grace_s=60.0
    )

    with pytest.raises(RedeliverLater) as raised:
        await poll_submitted(deps, submitted(age_s=59.9))

    assert raised.value.delay_s <= 0.11


async def test_an_unknown_account_past_the_grace_period_fails() -> None:
    deps, publisher = make_deps(
        directory=FakeDirectory(error=AccountUnknown("acc-1", "not there")), grace_s=60.0
    )
    before = _failures("account_unknown")

    await poll_submitted(deps, submitted(age_s=61.0))

    _assert_failed_with(publisher.completed, ACCOUNT_UNKNOWN)
    assert _failures("account_unknown") == before + 1


async def test_an_unsupported_provider_fails_without_reading_the_directory() -> None:
    directory = FakeDirectory()
    deps, publisher = make_deps(directory=directory)

    await poll_submitted(deps, submitted(provider_id="nowhere"))

    _assert_failed_with(publisher.completed, UNSUPPORTED_PROVIDER)
    assert directory.lookups == []


async def test_an_unexpected_directory_error_before_the_deadline_is_retried() -> None:
    deps, publisher = make_deps(directory=FakeDirectory(error=RuntimeError("kv unreachable")))

    with pytest.raises(RuntimeError):
        await poll_submitted(deps, submitted())

    assert publisher.completed == []


# -- the provider's own outcome


@pytest.mark.parametrize(
    ("job", "status", "error"),
    [
        (
            JobStatus(state=JobState.SUCCEEDED, asset=ASSET, cost=2.5),
            CompletionStatus.COMPLETED,
            None,
        ),
        (
            JobStatus(state=JobState.FAILED, error=ErrorInfo(code="nsfw"), cost=1.0),
            CompletionStatus.FAILED,
            ErrorInfo(code="nsfw"),
        ),
        (JobStatus(state=JobState.CANCELLED), CompletionStatus.CANCELLED, None),
    ],
    ids=["succeeded", "failed", "cancelled"],
)
async def test_a_terminal_status_publishes_its_outcome(
    job: JobStatus, status: CompletionStatus, error: ErrorInfo | None
) -> None:
    adapter = FakeAdapter(job)
    deps, publisher = make_deps(adapter=adapter)
    event = submitted()

    await poll_submitted(deps, event)

    completed = _only(publisher.completed)
    assert completed.status is status
    assert completed.error == error
    assert completed.asset == (ASSET if status is CompletionStatus.COMPLETED else None)
    assert completed.event_id == derive_event_id(event.generation_id, "generation.completed", 1)
    assert (completed.generation_id, completed.attempt) == (event.generation_id, 1)
    assert (completed.account_id, completed.provider_job_id) == ("acc-1", "job-1")
    assert completed.cost == job.cost  # what the provider reported the job used, carried on
    assert adapter.polled[0].credentials == ACCOUNT.credentials
    assert adapter.polled[0].base_url == ACCOUNT.base_url
    assert adapter.cancelled == []


async def test_a_running_job_is_polled_again_later() -> None:
    deps, publisher = make_deps(adapter=FakeAdapter(JobStatus(state=JobState.RUNNING)))

    with pytest.raises(RedeliverLater) as raised:
        await poll_submitted(deps, submitted())

    assert raised.value.delay_s > 0
    assert publisher.completed == []


async def test_a_fatal_provider_error_while_polling_fails_with_its_code() -> None:
    adapter = FakeAdapter(status_error=ContentRejected("no"))
    deps, publisher = make_deps(adapter=adapter)

    await poll_submitted(deps, submitted())

    completed = _only(publisher.completed)
    assert completed.error is not None
    assert completed.error.code == "content_rejected"


async def test_a_transient_provider_error_while_polling_is_retried() -> None:
    deps, publisher = make_deps(adapter=FakeAdapter(status_error=ProviderUnavailable("503")))

    with pytest.raises(RedeliverLater):
        await poll_submitted(deps, submitted())

    assert publisher.completed == []


async def test_an_account_of_another_provider_fails_the_job_with_a_clear_code() -> None:
    from genbus.contracts import ACCOUNT_ENTRY_INVALID
    from genbus.poller.service_layer.accounts import Unusable, account_for

    event = submitted(provider_id="pixverse").model_copy(update={"account_id": ACCOUNT.account_id})
    outcome = await account_for(FakeDirectory(), event, grace_s=30.0, now=event.occurred_at)

    assert isinstance(outcome, Unusable)
    assert outcome.failure == ACCOUNT_ENTRY_INVALID
    assert "another provider" in outcome.reason
