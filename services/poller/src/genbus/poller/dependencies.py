"""What the poller's service layer works with: the few operations it needs of each collaborator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from genbus.contracts import Event, EventBinding
from genbus.poller.adapters.account_directory import AccountAccess
from genbus.poller.config import PollerSettings
from genbus.providers import JobStatus, ProviderJobRef


class JobControl(Protocol):
    """What the poller does with a provider job (a part of `genbus.providers.ProviderAdapter`)."""

    async def status(self, job: ProviderJobRef) -> JobStatus: ...

    async def cancel(self, job: ProviderJobRef) -> None: ...


class Adapters(Protocol):
    """Provider adapters by provider id (`genbus.providers.AdapterRegistry`)."""

    def get(self, provider_id: str) -> JobControl:
        """The adapter; `genbus.providers.UnknownProvider` if there is none."""
        ...


class Accounts(Protocol):
    """Provider accounts by id (`genbus.poller.adapters.account_directory.AccountDirectory`)."""

    async def get(self, account_id: str) -> AccountAccess:
        """The account; an `AccountLookupError` subclass when it cannot be used."""
        ...


class Publisher(Protocol):
    """Publishes contract events (`genbus.runtime.publisher.EventPublisher`)."""

    async def publish(self, binding: EventBinding[Event], event: Event) -> None: ...


@dataclass
class PollerDeps:
    settings: PollerSettings
    adapters: Adapters
    directory: Accounts
    publisher: Publisher
