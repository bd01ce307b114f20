"""`genbus-api keys limits|show` and `genbus-api usage`: API key tiers and limits, and usage,
for operators. Output is JSON on stdout, as every `genbus-api` command's."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from genbus.api.config import ApiSettings
from genbus.api.domain.api_keys import ApiKey
from genbus.api.domain.errors import ApiKeyNotFound, InvalidLimits
from genbus.api.domain.limits import Limits, Tiers
from genbus.api.domain.usage import UsageRow
from genbus.api.service_layer import usage as usage_service
from genbus.api.service_layer.api_keys import set_key_limits
from genbus.api.service_layer.unit_of_work import UnitOfWork

RunWithUow = Callable[[Callable[[UnitOfWork], Coroutine[Any, Any, Any]]], Any]
_LIST_LIMITS = {"providers", "operations", "models", "provider_options"}


def add_parsers(keys: Any, sub: Any) -> None:
    """`keys limits`, `keys show` (under `keys`) and `usage` (top level)."""
    limits = keys.add_parser(
        "limits",
        help="set a key's tier and override its limits; prints the key with its limits",
    )
    limits.add_argument("key_id")
    limits.add_argument("--tier", help="the key's tier (one of GENBUS_API_TIERS)")
    limits.add_argument("--default-tier", action="store_true", help="back to the default tier")
    limits.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LIMIT=VALUE",
        help="override a limit: daily_quota=100, max_priority=5, providers=sim,pixverse, "
        "max_in_flight=null (unlimited); repeat for several",
    )
    limits.add_argument(
        "--clear", action="append", default=[], metavar="LIMIT", help="drop an override"
    )
    show = keys.add_parser("show", help="a key with its tier, overrides and effective limits")
    show.add_argument("key_id")
    usage = sub.add_parser("usage", help="generations and costs over a time range, as JSON")
    usage.add_argument("--from", dest="start", help="ISO time (default: today 00:00 UTC)")
    usage.add_argument("--to", dest="end", help="ISO time (default: now)")
    usage.add_argument("--by", choices=["user", "account", "provider"], default="user")
    usage.add_argument("--user", help="only this user's generations")


def parse_override(item: str) -> tuple[str, Any]:
    """`name=value`: the value as JSON, or a comma-separated list for the allow-lists."""
    name, sep, raw = item.partition("=")
    if not sep or not name:
        raise InvalidLimits(f"expected LIMIT=VALUE, got {item!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if name in _LIST_LIMITS and isinstance(value, str | int):
        value = [part.strip() for part in str(value).split(",") if part.strip()]
    return name, value


def key_limits_json(key: ApiKey, tiers: Tiers) -> dict[str, Any]:
    """A key's tier, overrides and effective limits, as JSON."""
    effective = tiers.effective(key.tier, key.overrides)
    return {
        "tier": key.tier or tiers.default,
        "overrides": key.overrides.as_json() if key.overrides is not None else {},
        "limits": {name: _json_value(getattr(effective, name)) for name in Limits.model_fields},
    }


def run(args: argparse.Namespace, settings: ApiSettings, with_uow: RunWithUow) -> Any:
    """The JSON result of `keys limits`, `keys show` or `usage`; raises ValueError on bad input."""
    tiers = Tiers(settings.tiers, settings.default_tier)
    if args.command == "usage":
        report = with_uow(
            lambda uow: usage_service.usage(
                uow,
                start=_time(args.start),
                end=_time(args.end),
                group_by=args.by,
                now=datetime.now(UTC),
                user_id=args.user,
            )
        )
        return {
            "from": report.start.isoformat(),
            "to": report.end.isoformat(),
            "group_by": report.group_by,
            "groups": [_row(r) for r in report.rows],
            "total": _row(report.total),
        }
    key_id = _key_id(args.key_id)
    if args.action == "show":
        key = with_uow(lambda uow: _get_key(uow, key_id))
    else:
        overrides = dict(parse_override(item) for item in args.set)
        key = with_uow(
            lambda uow: set_key_limits(
                uow,
                key_id,
                tiers=tiers,
                tier=args.tier,
                default_tier=args.default_tier,
                overrides=overrides,
                clear=args.clear,
            )
        )
    return {"id": str(key.id), "user_id": key.user_id, **key_limits_json(key, tiers)}


async def _get_key(uow: UnitOfWork, key_id: UUID) -> ApiKey:
    async with uow:
        key = await uow.api_keys.get(key_id)
    if key is None:
        raise ApiKeyNotFound(f"api key {key_id} not found")
    return key


def _key_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidLimits(f"not a key id: {raw!r}") from None


def _time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidLimits(f"not an ISO time: {raw!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _row(row: UsageRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "generations": row.generations,
        "completed": row.completed,
        "estimated_cost": row.estimated_cost,
        "actual_cost": row.actual_cost,
        "with_actual_cost": row.with_actual_cost,
    }


def _json_value(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value
