"""What the dispatcher's handlers need, built once by bootstrap."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.service_layer.unit_of_work import UnitOfWork
from genbus.providers import AdapterRegistry, CredentialCipher
from genbus.runtime.outbox import OutboxRelay
from genbus.runtime.publisher import EventPublisher


@dataclass
class Deps:
    settings: DispatcherSettings
    engine: AsyncEngine
    publisher: EventPublisher
    relay: OutboxRelay
    adapters: AdapterRegistry
    cipher: CredentialCipher
    owner: str
    #: Set whenever a slot may have freed or a job arrived: the scheduler looks again at once.
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.publisher, self.relay)
