"""Settings of the api service (`GENBUS_API_*`, plus the shared `DATABASE_URL` / `NATS_URL`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from genbus.api.domain.limits import Limits
from genbus.api.domain.pricing import DEFAULT_PRICES, PriceTable
from genbus.runtime.settings import RuntimeSettings

Seconds = Annotated[float, Field(gt=0)]
#: A list setting, given in the environment as comma-separated values.
CommaList = Annotated[list[str], NoDecode]


class ApiSettings(RuntimeSettings):
    """Validated once at start-up; every knob of the api process lives here."""

    model_config = SettingsConfigDict(env_prefix="GENBUS_API_", extra="ignore")

    #: What this process runs: `all` (HTTP, and the event consumers on an event loop of their
    #: own), `http` (HTTP only: run `genbus-api consumers` beside it), `consumers` (what
    #: `genbus-api consumers` runs: consumers, reconciler, purger, no HTTP API).
    role: Literal["all", "http", "consumers"] = "all"
    #: Database connections of the consumers' own pool.
    consumers_pool_size: Annotated[int, Field(ge=1)] = 5
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    #: A generation created without a `deadline` must be terminal this many seconds later.
    default_deadline_s: Seconds = 3600.0
    #: How long past its deadline a generation may wait for a late event before it is failed.
    deadline_grace_s: Annotated[float, Field(ge=0)] = 60.0
    reconcile_interval_s: Seconds = 5.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    #: A request not answered (its response not started) within this many seconds gets 503
    #: `service_unavailable` (e.g. the database went silent); 0 disables the deadline.
    request_timeout_s: Annotated[float, Field(ge=0)] = 10.0
    #: Local development only: a request without `Authorization` acts as `default_user_id`.
    allow_anonymous: bool = False
    #: The user anonymous requests act as (when `allow_anonymous`).
    default_user_id: Annotated[str, Field(min_length=1, max_length=128)] = "local"
    #: Per API key and per replica: sustained requests per second, and the burst allowed.
    rate_limit_per_s: Annotated[float, Field(gt=0)] = 20.0
    rate_limit_burst: Annotated[int, Field(ge=1)] = 40
    #: Per API key and per replica: requests in progress at once (until their response starts),
    #: checked before any work; past it 429 `rate_limited`. 0 disables it.
    max_inflight_per_key: Annotated[int, Field(ge=0)] = 32
    #: Per replica: requests in progress at once in all; past it 429 `overloaded` before any
    #: work (a saturated process answers its excess at once). 0 disables it.
    max_inflight_requests: Annotated[int, Field(ge=0)] = 64
    #: How long an Idempotency-Key is remembered (never less than 24 hours).
    idempotency_ttl_h: Annotated[float, Field(ge=24)] = 24.0
    #: How long the change log keeps a row; longer than the longest deadline (7 days), so
    #: that a live-status stream of any open generation can replay its whole history.
    change_log_retention_h: Annotated[float, Field(ge=24 * 7 + 1)] = 24 * 8
    #: Live-status streams: keep-alive comment interval, and the periodic catch-up read that
    #: covers a lost change notification.
    sse_ping_s: Seconds = 15.0
    sse_catch_up_s: Seconds = 3.0
    #: A stream is closed after this long (clients reconnect with Last-Event-ID, losing
    #: nothing): bounds connection lifetimes, and spreads clients over replicas again.
    sse_max_stream_s: Seconds = 900.0
    #: How often expired idempotency keys, change-log rows and past days' quota counters are
    #: deleted.
    purge_interval_s: Seconds = 600.0
    #: Admission control: a new generation (create, retry, legacy create) is refused with 429
    #: `overloaded` while this many generations are pending and due (accepted, not yet
    #: submitted), or this many outbox rows are unpublished (NATS trouble); 0 disables each.
    max_pending_generations: Annotated[int, Field(ge=0)] = 10_000
    max_outbox_backlog: Annotated[int, Field(ge=0)] = 5_000
    #: The same per user (429 `too_many_pending`); 0 (the default) disables it.
    max_pending_per_user: Annotated[int, Field(ge=0)] = 0
    #: How often the backlog estimate is read from the database (one query per replica).
    admission_refresh_s: Seconds = 1.0
    #: Live-status streams open at once, per API key and per replica (429 `too_many_streams`
    #: past either); 0 disables each.
    max_streams_per_key: Annotated[int, Field(ge=0)] = 20
    max_streams_per_replica: Annotated[int, Field(ge=0)] = 1000
    #: Sync mode: requests waiting at once (`Prefer: wait`) per replica; past it a request is
    #: answered at once, without `Preference-Applied`. 0 disables the bound.
    max_waiting_requests: Annotated[int, Field(ge=0)] = 1000
    #: CORS: browser origins allowed to call the API (exact `scheme://host[:port]`, no `*`);
    #: empty (the default) turns CORS off.
    cors_allow_origins: CommaList = []
    cors_allow_methods: CommaList = ["GET", "POST", "DELETE"]
    cors_allow_headers: CommaList = [
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "Last-Event-ID",
        "Prefer",
    ]
    cors_expose_headers: CommaList = [
        "Location",
        "Retry-After",
        "Preference-Applied",
        "Idempotent-Replayed",
    ]
    #: How long a browser may cache a preflight answer.
    cors_max_age_s: Annotated[int, Field(ge=0)] = 600
    #: API key tiers, as JSON: `{"name": {limit: value, ...}}`. Limits (each optional; unset
    #: or null: unlimited): `max_in_flight` (generations submitted at once), `daily_quota`
    #: (generations created per UTC day by the key's user), `max_priority` (0..10), and
    #: allow-lists `providers`, `operations`, `models` (`params.model`) and `provider_options`
    #: (keys of `params.provider_options`). E.g. `{"default": {}, "free": {"daily_quota": 50,
    #: "max_in_flight": 2, "max_priority": 5, "providers": ["pixverse"]}}`. A key has a tier
    #: (`genbus-api keys create --tier`) and may override any limit (`keys limits`).
    tiers: dict[Annotated[str, Field(min_length=1, max_length=64)], Limits] = Field(
        default={
            "default": Limits(),
            "free": Limits(daily_quota=100, max_in_flight=2, max_priority=5),
            "pro": Limits(daily_quota=10_000, max_in_flight=20),
        },
        json_schema_extra={"doc_type": "JSON object"},
    )
    #: The tier of keys created without one (and of anonymous requests); one of `tiers`.
    default_tier: str = "default"
    #: The price table, as JSON: `{"provider_id": [rule, ...]}`; a generation's estimated
    #: cost is the price of the first rule that matches it: `credits` + `per_second` *
    #: `params.duration`. Matchers (each optional): `operation`, `model`, `quality`,
    #: `duration`. E.g. `{"pixverse": [{"quality": "1080p", "credits": 20, "per_second": 8},
    #: {"credits": 10, "per_second": 4}]}`. Unit: the provider's (credits; Replicate: seconds).
    prices: PriceTable = Field(
        default=PriceTable.model_validate(DEFAULT_PRICES),
        json_schema_extra={"doc_type": "JSON object"},
    )

    @field_validator(
        "cors_allow_origins",
        "cors_allow_methods",
        "cors_allow_headers",
        "cors_expose_headers",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _default_tier_exists(self) -> ApiSettings:
        if self.default_tier not in self.tiers:
            raise ValueError(
                f"default_tier {self.default_tier!r} is not one of the tiers "
                f"({', '.join(sorted(self.tiers))})"
            )
        return self

    @field_validator("cors_allow_origins")
    @classmethod
    def _explicit_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*" or "://" not in origin or origin.endswith("/"):
                raise ValueError(
                    f"{origin!r}: CORS origins are explicit, as scheme://host[:port] (no '*')"
                )
        return origins
