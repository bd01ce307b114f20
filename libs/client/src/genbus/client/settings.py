"""A client's connection settings, shared by the sync and async clients."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    api_key: str | None
    timeout_s: float
    max_retries: int
    backoff_s: float

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": "genbus-client/0.1"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def backoff(self, attempt: int) -> float:
        """Seconds before try `attempt + 1`: exponential, with full jitter, at most 10 s."""
        return random.uniform(0, min(10.0, self.backoff_s * 2 ** (attempt - 1)))
