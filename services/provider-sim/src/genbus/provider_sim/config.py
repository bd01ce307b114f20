"""Settings of the provider simulator: behaviour knobs (changeable at run time), server options."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_KEYS = ("sim-key-1", "sim-key-2", "sim-key-3", "sim-key-4")

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]


class SimConfig(BaseSettings):
    """How the simulated provider behaves: `SIM_*` at start, replaced by `PUT /_sim/config`."""

    model_config = SettingsConfigDict(env_prefix="SIM_", extra="forbid", frozen=True)

    keys: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_KEYS))
    seed: int | None = None

    # A job lasts duration_s + uniform(0, duration_jitter_s) seconds; the first
    # queued_fraction of that time it is `queued`, then `running`.
    duration_s: Seconds = 3.0
    duration_jitter_s: Seconds = 2.0
    queued_fraction: Rate = 0.1

    fail_rate: Rate = 0.0
    moderation_rate: Rate = 0.0
    rate_limit_rate: Rate = 0.0
    retry_after_s: Annotated[int, Field(ge=0)] = 1
    error_5xx_rate: Rate = 0.0
    # Before every authenticated route of both APIs (polls included).
    latency_ms: Seconds = 0.0

    # A slow provider: before a job-creating call (or a Pixverse image upload) does anything.
    submit_latency_ms: Seconds = 0.0
    # A provider that accepted the job and answers late (or never): applies only to answers
    # that created a job, never to idempotent replays.
    accepted_response_delay_ms: Seconds = 0.0
    lost_response_rate: Rate = 0.0
    # A provider whose status calls hang for some keys: a status call (native `GET /v1/jobs/{id}`,
    # Pixverse result) of a key listed here is answered only after status_hang_ms.
    status_hang_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    status_hang_ms: Seconds = 600_000.0

    # A provider that downloads the inputs a job names: each input URL must answer 200 at
    # submit, else the job is refused (what was fetched: `GET /_sim/inputs`).
    fetch_inputs: bool = False

    per_key_concurrency: Annotated[int, Field(ge=1)] | None = None
    enforce_concurrency: bool = True
    # Credits per key; keys not listed get default_credits (None: unlimited).
    per_key_credits: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    default_credits: Annotated[int, Field(ge=0)] | None = None

    @field_validator("keys", "status_hang_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    def credits_for(self, api_key: str) -> int | None:
        """Credits granted to `api_key`, or None when unlimited."""
        return self.per_key_credits.get(api_key, self.default_credits)


class ServerSettings(BaseSettings):
    """Where and how the simulator's HTTP server listens (start-up only)."""

    model_config = SettingsConfigDict(env_prefix="SIM_", extra="ignore")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9100
    access_log: bool = False
    log_level: str = "info"
