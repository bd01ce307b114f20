"""Small in-memory stand-ins for the poller's collaborators, and a submitted-event factory."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from genbus.contracts import Event, EventBinding, GenerationCompleted, GenerationSubmitted
from genbus.poller.adapters.account_directory import AccountAccess
from genbus.poller.config import PollerSettings
from genbus.poller.dependencies import JobControl, PollerDeps
from genbus.providers import Credentials, JobState, JobStatus, ProviderJobRef, UnknownProvider

ACCOUNT = AccountAccess(
    account_id="acc-1",
    provider_id="sim",
    base_url="http://provider.test",
    credentials=Credentials(api_key="k"),
)


def submitted(
    *, age_s: float = 5.0, deadline_in_s: float = 600.0, provider_id: str = "sim"
) -> GenerationSubmitted:
    """A submitted event `age_s` old whose deadline is `deadline_in_s` away (negative: passed)."""
    now = datetime.now(UTC)
    return GenerationSubmitted(
        event_id=uuid4(),
        occurred_at=now - timedelta(seconds=age_s),
        generation_id=uuid4(),
        user_id="user-1",
        provider_id=provider_id,
        operation_type="text_to_video",
        # One account per provider: ACCOUNT is the sim's, `acc-<provider>` another's.
        account_id=ACCOUNT.account_id
        if provider_id == ACCOUNT.provider_id
        else f"acc-{provider_id}",
        provider_job_id="job-1",
        attempt=1,
        deadline_at=now + timedelta(seconds=deadline_in_s),
    )


class FakeDirectory:
    """Returns `account`, or raises `error` when one is set; counts lookups."""

    def __init__(self, account: AccountAccess = ACCOUNT, error: Exception | None = None) -> None:
        self.account = account
        self.error = error
        self.lookups: list[str] = []

    async def get(self, account_id: str) -> AccountAccess:
        self.lookups.append(account_id)
        if self.error is not None:
            raise self.error
        if account_id != self.account.account_id and account_id.startswith("acc-"):
            return replace(self.account, account_id=account_id, provider_id=account_id[4:])
        return self.account


class FakeAdapter:
    """A provider whose `status` answers `status` (or raises `status_error`); records cancels.

    With `status_gate`, each status call first waits until the gate is set (a hung provider);
    `status_in_flight` counts the calls waiting there."""

    def __init__(
        self,
        status: JobStatus | None = None,
        *,
        status_error: Exception | None = None,
        cancel_error: Exception | None = None,
        cancel_hangs: bool = False,
        status_gate: asyncio.Event | None = None,
    ) -> None:
        self.job_status = status or JobStatus(state=JobState.RUNNING, progress=0.5)
        self.status_error = status_error
        self.cancel_error = cancel_error
        self.cancel_hangs = cancel_hangs
        self.cancelled: list[ProviderJobRef] = []
        self.polled: list[ProviderJobRef] = []
        self.status_gate = status_gate
        self.status_in_flight = 0

    async def status(self, job: ProviderJobRef) -> JobStatus:
        self.polled.append(job)
        if self.status_gate is not None:
            self.status_in_flight += 1
            try:
                await self.status_gate.wait()
            finally:
                self.status_in_flight -= 1
        if self.status_error is not None:
            raise self.status_error
        return self.job_status

    async def cancel(self, job: ProviderJobRef) -> None:
        self.cancelled.append(job)
        if self.cancel_hangs:
            await asyncio.Event().wait()
        if self.cancel_error is not None:
            raise self.cancel_error


class FakeAdapters:
    """Serves `adapter` for provider "sim" only."""

    def __init__(self, adapter: JobControl) -> None:
        self.adapter = adapter

    def get(self, provider_id: str) -> JobControl:
        if provider_id != "sim":
            raise UnknownProvider(provider_id)
        return self.adapter


class ProviderAdapters:
    """Serves one adapter per provider id."""

    def __init__(self, adapters: dict[str, JobControl]) -> None:
        self.adapters = adapters

    def get(self, provider_id: str) -> JobControl:
        try:
            return self.adapters[provider_id]
        except KeyError:
            raise UnknownProvider(provider_id) from None


class FakePublisher:
    """Keeps every published completed event."""

    def __init__(self) -> None:
        self.completed: list[GenerationCompleted] = []

    async def publish(self, binding: EventBinding[Event], event: Event) -> None:
        assert isinstance(event, GenerationCompleted), event
        assert binding.model is GenerationCompleted
        self.completed.append(event)


def make_deps(
    *,
    directory: FakeDirectory | None = None,
    adapter: FakeAdapter | None = None,
    grace_s: float = 60.0,
) -> tuple[PollerDeps, FakePublisher]:
    publisher = FakePublisher()
    deps = PollerDeps(
        settings=PollerSettings(account_unknown_grace_s=grace_s),
        adapters=FakeAdapters(adapter or FakeAdapter()),
        directory=directory or FakeDirectory(),
        publisher=publisher,
    )
    return deps, publisher
