"""Dispatcher settings (env prefix GENBUS_DISPATCHER_, plus the shared NATS/DB URLs)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from genbus.dispatcher.service_layer.base_urls import BaseUrlPolicy
from genbus.providers.credentials import CredentialCipher
from genbus.runtime.settings import RuntimeSettings

#: The shortest admin token the dispatcher accepts (e.g. `secrets.token_urlsafe(32)`: 43).
MIN_ADMIN_TOKEN_LENGTH = 32


class DispatcherSettings(RuntimeSettings):
    model_config = SettingsConfigDict(env_prefix="GENBUS_DISPATCHER_", extra="ignore")

    #: Fernet keys, comma-separated; the first encrypts, all decrypt (rotation).
    credentials_keys: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices(
            "GENBUS_CREDENTIALS_KEYS", "GENBUS_DISPATCHER_CREDENTIALS_KEYS"
        ),
    )
    #: Bearer token of the admin HTTP API (`/admin/...`) and the console (`/console`); empty
    #: turns the admin listener off. At least `MIN_ADMIN_TOKEN_LENGTH` characters.
    admin_token: SecretStr = SecretStr("")
    #: Who holds the token, as the audit log names them (with the request's client address).
    admin_name: str = Field(default="admin", min_length=1, max_length=64)
    #: The admin API and console listen here, apart from probes and metrics (loopback default).
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=8001, ge=0, le=65535)
    #: Development mode: account base URLs may be plain http, console cookies are not `Secure`.
    development: bool = False
    #: Account base URLs may name private, loopback or link-local addresses (a local provider).
    allow_private_base_urls: bool = False
    #: The NATS identity of the admin listener's own connection (the `operator` role: every
    #: consumer's lag, dead letters read, trimmed and replayed). Unset: the dispatcher's own
    #: connection, which a secured server lets do none of that.
    operator_nats_user: str | None = None
    operator_nats_password: SecretStr | None = None
    replica_id: str = ""
    #: How long a claim is held without renewal before another replica may recover it. It is
    #: renewed every quarter of it while a submission is in flight; a holder that cannot renew
    #: it for half of it gives the submission up, so two holders never call a provider at once.
    lease_s: float = Field(default=30.0, gt=0)
    #: The longest a whole submission (every provider call, retry and backoff) may take; a call
    #: still running then is abandoned and its outcome resolved as unknown.
    submit_budget_s: float = Field(default=120.0, gt=0)
    #: Grace after a submitted job's deadline before the dispatcher fails it and frees its slot
    #: (the poller normally ends it at the deadline).
    submitted_deadline_grace_s: float = Field(default=60.0, ge=0)
    #: How long a job ended without the provider's word (outcome unknown, the poller unable to
    #: follow it, past its deadline) keeps its account slot: the provider job may still run, and
    #: the account must not be given more jobs than its `max_concurrent` meanwhile.
    unfollowed_slot_hold_s: float = Field(default=300.0, ge=0)
    #: Submissions in flight at once, across all accounts of this replica.
    max_inflight_submissions: int = Field(default=64, ge=1)
    #: Of those, at most this many for one provider: a slow or hung provider never takes the
    #: slots other providers' submissions need (a bulkhead).
    max_inflight_per_provider: int = Field(default=32, ge=1)
    #: Attempts at a transient provider error (timeouts, 5xx) before failing the generation.
    max_submit_tries: int = 4
    submit_backoff_base_s: float = 0.5
    submit_backoff_max_s: float = 10.0
    #: Cooldowns applied to an account when the provider pushes back.
    rate_limit_cooldown_s: float = 10.0
    concurrency_cooldown_s: float = 2.0
    #: Circuit breaker per account: after this many transient failures in a row (timeouts,
    #: 5xx, answers lost) the account is not used for `breaker_open_s`, doubled on every trip in
    #: a row up to `breaker_open_max_s`; then one probe submission decides (README).
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=10.0, gt=0)
    breaker_open_max_s: float = Field(default=300.0, gt=0)
    #: Safety-net wake-up of the scheduler when no event woke it.
    idle_tick_s: float = 0.5
    reconcile_interval_s: float = 5.0
    #: Jobs ended (completed, failed, cancelled) longer ago than this are deleted, once their
    #: slot is no longer held. At least a day: today's submissions per account are counted from
    #: the jobs (`daily_cap`).
    finished_retention_h: float = Field(default=168.0, ge=24)
    #: How often the reconciler looks for them, and the rows one statement deletes at most.
    finished_purge_interval_s: float = Field(default=300.0, gt=0)
    finished_purge_batch: int = Field(default=1000, ge=1)
    account_directory_sync_s: float = 5.0
    #: How often each account's balance (credits left) is read from its provider's API, where
    #: it has one (Pixverse, the sim); also at once after a `quota_exhausted`. 0: never.
    balance_refresh_s: float = Field(default=60.0, ge=0)

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, token: SecretStr) -> SecretStr:
        value = token.get_secret_value().strip()
        if value and len(value) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"GENBUS_DISPATCHER_ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_LENGTH} characters"
            )
        return SecretStr(value)

    def base_url_policy(self) -> BaseUrlPolicy:
        return BaseUrlPolicy(
            allow_http=self.development, allow_private=self.allow_private_base_urls
        )

    def credentials_cipher(self) -> CredentialCipher:
        """The cipher of account credentials; exits when no key is configured."""
        keys = self.credentials_keys.get_secret_value()
        if not keys:
            raise SystemExit("GENBUS_CREDENTIALS_KEYS is required (comma-separated Fernet keys)")
        return CredentialCipher.from_key_list(keys)
