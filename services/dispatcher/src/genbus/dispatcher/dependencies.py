"""What the dispatcher's service layer is given, built once by bootstrap."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from genbus.dispatcher.config import DispatcherSettings
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory
from genbus.providers import AdapterRegistry, CredentialCipher


@dataclass
class Deps:
    settings: DispatcherSettings
    #: A new unit of work (one transaction) per call.
    uow: UowFactory
    adapters: AdapterRegistry
    cipher: CredentialCipher
    owner: str
    #: Set whenever a slot may have freed or a job arrived: the scheduler looks again at once.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when a provider said an account's credits are spent: balances are read again now.
    balance_check: asyncio.Event = field(default_factory=asyncio.Event)
    #: A unit of work without a transaction around its statements (None: `uow`), for work
    #: that is one write (see `SqlUnitOfWork`'s `single_statement`).
    statement_uow: UowFactory | None = None

    def one_statement(self) -> AbstractUnitOfWork:
        """A unit of work for one write."""
        return (self.statement_uow or self.uow)()
