"""Issuing, listing, revoking and checking API keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from genbus.api.domain.api_keys import (
    ApiKey,
    Principal,
    digest_api_key,
    display_prefix,
    looks_like_api_key,
    new_api_key,
)
from genbus.api.domain.errors import ApiKeyNotFound, InvalidLimits
from genbus.api.domain.limits import Limits, Tiers, parse_limits
from genbus.api.service_layer.unit_of_work import UnitOfWork
from genbus.runtime.logging import get_logger

log = get_logger(__name__)

MAX_USER_ID_LENGTH = 128
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class IssuedKey:
    """A new key: `secret` is the key itself, shown to its holder once and stored nowhere."""

    key: ApiKey
    secret: str


async def issue_api_key(
    uow: UnitOfWork,
    *,
    user_id: str,
    name: str,
    admin: bool = False,
    now: datetime,
    tier: str | None = None,
    tiers: Tiers | None = None,
) -> IssuedKey:
    """Create a key for `user_id`; only its digest and display prefix are stored."""
    _check_tier(tier, tiers)
    if not 0 < len(user_id) <= MAX_USER_ID_LENGTH or user_id != user_id.strip():
        raise ValueError(f"user id must be 1..{MAX_USER_ID_LENGTH} characters, no outer spaces")
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise ValueError(f"name must be 1..{MAX_NAME_LENGTH} characters")
    secret = new_api_key()
    key = ApiKey(
        id=uuid4(),
        user_id=user_id,
        name=name,
        prefix=display_prefix(secret),
        admin=admin,
        created_at=now,
        revoked_at=None,
        tier=tier,
    )
    async with uow:
        await uow.api_keys.add(key, digest=digest_api_key(secret))
        await uow.commit()
    log.info("api key issued", key_id=str(key.id), user_id=user_id, prefix=key.prefix, admin=admin)
    return IssuedKey(key, secret)


async def list_api_keys(uow: UnitOfWork, *, user_id: str | None = None) -> list[ApiKey]:
    async with uow:
        return await uow.api_keys.list(user_id=user_id)


async def revoke_api_key(uow: UnitOfWork, key_id: UUID, *, now: datetime) -> ApiKey:
    """Revoke a key at once (revoking a revoked key changes nothing)."""
    async with uow:
        key = await uow.api_keys.revoke(key_id, at=now)
        if key is None:
            raise ApiKeyNotFound(f"api key {key_id} not found")
        await uow.commit()
    log.info("api key revoked", key_id=str(key_id), prefix=key.prefix)
    return key


async def set_key_limits(
    uow: UnitOfWork,
    key_id: UUID,
    *,
    tiers: Tiers,
    tier: str | None = None,
    default_tier: bool = False,
    overrides: Mapping[str, Any] | None = None,
    clear: Iterable[str] = (),
) -> ApiKey:
    """Change a key's tier (`default_tier`: back to the default) and overrides: those in
    `overrides` are set (a null: unlimited), those in `clear` removed (the tier's apply)."""
    _check_tier(tier, tiers)
    async with uow:
        key = await uow.api_keys.get(key_id)
        if key is None:
            raise ApiKeyNotFound(f"api key {key_id} not found")
        current = key.overrides.as_json() if key.overrides is not None else {}
        unknown = set(clear) - set(Limits.model_fields)
        if unknown:
            raise InvalidLimits(f"no such limit: {', '.join(sorted(unknown))}")
        merged = {k: v for k, v in current.items() if k not in set(clear)} | dict(overrides or {})
        new_tier = None if default_tier else (tier if tier is not None else key.tier)
        changed = await uow.api_keys.set_limits(
            key_id, tier=new_tier, overrides=parse_limits(merged)
        )
        assert changed is not None
        await uow.commit()
    log.info("api key limits set", key_id=str(key_id), tier=new_tier, overrides=merged)
    return changed


def _check_tier(tier: str | None, tiers: Tiers | None) -> None:
    if tier is not None and tiers is not None and not tiers.knows(tier):
        raise InvalidLimits(f"no such tier: {tier!r} (tiers: {', '.join(tiers.names)})")


async def authenticate(uow: UnitOfWork, presented: str) -> Principal | None:
    """The principal an active key stands for; None for anything else."""
    if not looks_like_api_key(presented):
        return None
    async with uow:
        key = await uow.api_keys.active_by_digest(digest_api_key(presented))
    if key is None:
        return None
    return Principal(
        user_id=key.user_id,
        key_id=key.id,
        admin=key.admin,
        tier=key.tier,
        overrides=key.overrides,
    )
