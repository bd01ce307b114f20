"""Settings of the api service (`GENBUS_API_*`, plus the shared `DATABASE_URL` / `NATS_URL`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from genbus.runtime.settings import RuntimeSettings

Seconds = Annotated[float, Field(gt=0)]


class ApiSettings(RuntimeSettings):
    """Validated once at start-up; every knob of the api process lives here."""

    model_config = SettingsConfigDict(env_prefix="GENBUS_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    #: A generation created without a `deadline` must be terminal this many seconds later.
    default_deadline_s: Seconds = 3600.0
    #: How long past its deadline a generation may wait for a late event before it is failed.
    deadline_grace_s: Annotated[float, Field(ge=0)] = 60.0
    reconcile_interval_s: Seconds = 5.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    #: The user every request acts as until API keys exist (see `entrypoints/http/deps.py`).
    default_user_id: Annotated[str, Field(min_length=1, max_length=128)] = "local"
