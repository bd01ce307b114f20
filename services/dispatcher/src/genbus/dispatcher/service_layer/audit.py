"""The audit log of admin changes: who changed what, when, and how it looked before and after.

Every mutating admin operation (account create, update, enable, disable, seed, key rotation,
dead-letter replay) appends one entry in its own transaction, so a change and its entry commit
together. Entries hold account views (credential names, never values) and dead-letter summaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genbus.dispatcher.adapters.audit_store import AuditEntry
from genbus.dispatcher.service_layer.unit_of_work import AbstractUnitOfWork

#: Who made a change when the caller does not say (internal bootstrap paths).
SYSTEM_ACTOR = "system"
#: Keys never written to the audit log, whatever a caller passes.
_SECRET_KEYS = frozenset({"credentials", "credentials_ciphertext", "token", "password"})


def admin_actor(name: str, client: str | None) -> str:
    """The admin token's holder as the audit log names them: `name@client-address`."""
    return f"{name}@{client}" if client else name


def without_secrets(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v for k, v in values.items() if k not in _SECRET_KEYS}


async def record(
    uow: AbstractUnitOfWork,
    *,
    actor: str,
    action: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Append an entry inside `uow`'s transaction (the caller commits)."""
    await uow.audit.append(
        actor=actor,
        action=action,
        target=target,
        before=without_secrets(before),
        after=without_secrets(after),
    )


async def recorded(
    uow: AbstractUnitOfWork, *, actor: str, action: str, target: str, **details: Any
) -> None:
    """Append one entry in a transaction of its own (a change made outside the database)."""
    async with uow:
        await record(uow, actor=actor, action=action, target=target, after=details or None)
        await uow.commit()


async def list_entries(
    uow: AbstractUnitOfWork,
    *,
    limit: int = 100,
    target: str | None = None,
    before_id: int | None = None,
) -> list[AuditEntry]:
    async with uow:
        return await uow.audit.entries(limit=limit, target=target, before_id=before_id)
