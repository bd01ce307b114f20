"""The price table: what a generation is estimated to cost, in its provider's billing unit.

Per provider, a list of rules; the first rule whose matchers (`operation`, `model`, `quality`,
`duration`; each optional) all match the request gives its price: `credits` +
`per_second` * `params.duration` (seconds; 0 for operations without a duration). A provider
without a matching rule has no estimate (`estimated_cost` null). Units: credits for Pixverse and
the sim (what their APIs report as used), seconds of compute for Replicate (`predict_time`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from genbus.api.domain.params import OperationType, Quality


class PriceRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: OperationType | None = None
    model: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    quality: Quality | None = None
    duration: Annotated[int, Field(ge=1, le=60)] | None = None
    credits: Annotated[float, Field(ge=0)] = 0.0
    per_second: Annotated[float, Field(ge=0)] = 0.0

    def matches(self, operation: str, params: Mapping[str, Any]) -> bool:
        wanted = {
            "operation": operation,
            "model": params.get("model"),
            "quality": params.get("quality"),
            "duration": params.get("duration"),
        }
        return all(getattr(self, k) is None or getattr(self, k) == v for k, v in wanted.items())

    def price(self, params: Mapping[str, Any]) -> float:
        duration = params.get("duration")
        seconds = duration if isinstance(duration, int) else 0
        return round(self.credits + self.per_second * seconds, 6)


class PriceTable(RootModel[dict[str, list[PriceRule]]]):
    """`{provider_id: [rule, ...]}`, validated at start-up (`GENBUS_API_PRICES`)."""

    root: dict[str, list[PriceRule]] = Field(default_factory=dict)

    def estimate(self, provider_id: str, operation: str, params: Mapping[str, Any]) -> float | None:
        """The price of the first matching rule; None when no rule matches."""
        for rule in self.root.get(provider_id, ()):
            if rule.matches(operation, params):
                return rule.price(params)
        return None


#: The default: the sim charges one credit per job (as its `credits_used` counts).
DEFAULT_PRICES: dict[str, list[dict[str, Any]]] = {"sim": [{"credits": 1}]}
NO_PRICES = PriceTable({})
