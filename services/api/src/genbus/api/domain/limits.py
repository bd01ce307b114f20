"""What an API key may do: its tier's limits, with the key's own overrides on top.

A tier is a named set of limits defined in the settings (`GENBUS_API_TIERS`); a key names its
tier (none: the default tier, `GENBUS_API_DEFAULT_TIER`) and may override any limit of it.
Every limit is optional: unset (or null) means unlimited / everything allowed.

- `max_in_flight`: the key's generations submitted at once (enforced by the dispatcher, which
  receives it in `GenerationRequested.max_in_flight`);
- `daily_quota`: generations created per UTC day by the key's user (every key of the user
  counts against the same day's counter; each key is held to its own quota);
- `max_priority`: the highest `priority` a request may ask for;
- `providers`, `operations`, `models` (`params.model`, e.g. Replicate model names),
  `provider_options` (allowed keys of `params.provider_options`): allow-lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genbus.api.domain.errors import InvalidLimits, NotEntitled
from genbus.runtime.problems import FieldError

_Names = Annotated[frozenset[Annotated[str, Field(min_length=1, max_length=200)]], Field()]


class Limits(BaseModel):
    """A set of limits: a tier's, a key's overrides (only the fields set), or the effective ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_in_flight: Annotated[int, Field(ge=1)] | None = None
    daily_quota: Annotated[int, Field(ge=0)] | None = None
    max_priority: Annotated[int, Field(ge=0, le=10)] | None = None
    providers: _Names | None = None
    operations: _Names | None = None
    models: _Names | None = None
    provider_options: _Names | None = None

    def overridden_by(self, overrides: Limits) -> Limits:
        """These limits with every field `overrides` sets (a null there: unlimited) replaced."""
        return self.model_copy(update={name: getattr(overrides, name) for name in overrides.set})

    @property
    def set(self) -> frozenset[str]:
        """The fields given explicitly (a key's overrides are exactly these)."""
        return frozenset(self.model_fields_set)

    def as_json(self) -> dict[str, Any]:
        """The fields set, as JSON (name lists sorted): how overrides are stored and shown."""
        return self.model_dump(mode="json", include=set(self.set), round_trip=True) | {
            name: sorted(value)
            for name in self.set
            if isinstance(value := getattr(self, name), frozenset)
        }


UNLIMITED = Limits()


def parse_limits(value: Mapping[str, Any]) -> Limits:
    """`value` as limits; raises `InvalidLimits` naming what is wrong."""
    try:
        return Limits.model_validate(dict(value))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'limits'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidLimits(problems) from None


class Tiers:
    """The configured tiers and which one a key without a tier gets."""

    def __init__(self, tiers: Mapping[str, Limits], default: str) -> None:
        if default not in tiers:
            raise ValueError(f"the default tier {default!r} is not among the tiers")
        self._tiers = dict(tiers)
        self.default = default

    @property
    def names(self) -> list[str]:
        return sorted(self._tiers)

    def knows(self, name: str) -> bool:
        return name in self._tiers

    def effective(self, tier: str | None, overrides: Limits | None) -> Limits:
        """A key's limits: its tier's (an unknown or unset tier: the default's), overridden."""
        base = self._tiers.get(tier or self.default, self._tiers[self.default])
        return base if overrides is None else base.overridden_by(overrides)


def entitlement_problems(
    limits: Limits,
    *,
    provider_id: str,
    operation_type: str,
    priority: int,
    params: Mapping[str, Any],
) -> list[FieldError]:
    """Every field of a request its key is not entitled to (empty: all allowed)."""
    problems: list[FieldError] = []
    if limits.providers is not None and provider_id not in limits.providers:
        problems.append(_not_allowed("provider_id", "this provider"))
    if limits.operations is not None and operation_type not in limits.operations:
        problems.append(_not_allowed("operation_type", "this operation"))
    model = params.get("model")
    if limits.models is not None and model is not None and model not in limits.models:
        problems.append(_not_allowed("params.model", "this model"))
    if limits.max_priority is not None and priority > limits.max_priority:
        problems.append(
            FieldError("priority", "not_entitled", f"your key allows at most {limits.max_priority}")
        )
    options = params.get("provider_options") or {}
    if limits.provider_options is not None:
        problems.extend(
            _not_allowed(f"params.provider_options.{key}", "this provider option")
            for key in sorted(options)
            if key not in limits.provider_options
        )
    return problems


def check_entitled(limits: Limits, **request: Any) -> None:
    """Raise `NotEntitled` (403) naming each field the key may not use."""
    problems = entitlement_problems(limits, **request)
    if problems:
        raise NotEntitled(problems)


def _not_allowed(field: str, what: str) -> FieldError:
    return FieldError(field, "not_entitled", f"your API key is not entitled to {what}")


def quota_day(now: datetime) -> date:
    """The UTC day a creation at `now` counts against."""
    return now.astimezone(UTC).date()


def quota_resets_at(now: datetime) -> datetime:
    """When the day's quota starts afresh: the next UTC midnight."""
    return datetime.combine(quota_day(now) + timedelta(days=1), time(0), tzinfo=UTC)
